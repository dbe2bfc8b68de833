import type {Config} from '../../config/schema.js'
import {HaError} from '../../core/errors.js'

/** A service IP as the config names it. */
export type ServiceIp = Config['service_ips'][number]

/** The systems a node's addresses can be configured at boot with (the config's boot_config.kind). */
export type BootConfigKind = Config['boot_config']['kind']

/** One file of a node's boot configuration, as read there: its host path and its text. */
export interface BootFile {
  path: string
  text: string
}

/** An address a file configures at boot: as written (CIDR where the file gives a prefix), and on which interface. */
export interface BootAddress {
  address: string
  interface: string
  /** A line ha cannot read mentions it: the system may or may not bring it up (an edit of it is refused). */
  unread?: true
}

/**
 * A file the driver will not edit: the interface is not in it, several files could hold it, a
 * tool generates it, or an address is written in a form it does not read. Always names the file
 * (as on the node) and what to do; thrown before anything was changed.
 */
export class BootConfigRefusal extends HaError {
  constructor(path: string, problem: string, todo: string[]) {
    super(`${path}: ${problem}; ha did not change it`, {actions: todo, details: {file: path}})
  }
}

/**
 * How a node's network configuration brings addresses up at boot, changed as the runtime is: a
 * node that still has a service IP in it takes the address back at its next boot, while the
 * other node holds it. One implementation per configuration system, chosen in one place
 * (bootConfigDriver in ./index.ts, from the config's boot_config.kind); the steps and ha
 * rejoin's give-back ask it, never a path or a format.
 *
 * A system keeps its files in one directory, and which file configures an interface is decided
 * by their contents (a NetworkManager connection names its interface-name, a netplan file its
 * ethernets): so a driver is given every file of its directory that it reads (`dir` and
 * `matches`) and picks among them. Edits stay pure text functions of one file's content: ha
 * reads the files, the step plans the edit, the runner writes it (atomic, mode and owner kept).
 * A driver refuses (BootConfigRefusal) rather than guess.
 */
export interface BootConfigDriver {
  readonly name: BootConfigKind
  /** The directory its files live in, on a node. */
  readonly dir: string
  /** The shell glob of their names in dir (what a node lists), e.g. *.nmconnection. */
  readonly glob: string
  /** Is this name in dir one of the files the system reads at boot (the glob, less backups and the like)? */
  matches(name: string): boolean
  /** Where an edit of `ip` goes, as the runbook names it: the file, or a glob of dir when its contents decide. */
  placeFor(ip: ServiceIp, op: 'add' | 'remove'): string
  /** Every IPv4 address the file configures at boot, with its interface; refuses an address line it cannot read. */
  addresses(file: BootFile): BootAddress[]
  /** The one file of these that configures `ip.interface` (where the address goes), or a refusal. */
  fileFor(files: BootFile[], ip: ServiceIp): BootFile
  /** The text configuring `ip` on its interface too (unchanged when it does already), or a refusal. */
  withAddress(file: BootFile, ip: ServiceIp): string
  /** The text no longer configuring `address` (CIDR or bare), everything else kept, or a refusal. */
  withoutAddress(file: BootFile, address: string): string
  /** The edits as the runbook prints them. */
  adding(ip: ServiceIp): string
  removing(ip: ServiceIp): string
}

export const bareAddress = (address: string) => address.split('/')[0]

import type {Config} from '../../config/schema.js'

/** A service IP as the config names it. */
export type ServiceIp = Config['service_ips'][number]

/**
 * How a node's network configuration brings addresses up at boot, changed as the runtime is: a
 * node that still has a service IP in it takes the address back at its next boot, while the
 * other node holds it. One implementation per configuration system (ifupdown today), chosen in
 * one place (bootConfigDriver in ./index.ts); the steps and ha rejoin's give-back ask it, never a
 * path or a format. Edits are pure text functions of one file's content: ha reads the file, the
 * step plans the edit, the runner writes it.
 *
 * A new system (NetworkManager, ifcfg, netplan) is one file implementing this, plus its line in
 * ./index.ts.
 */
export interface BootConfigDriver {
  readonly name: string
  /** The file on a node that configures `ip` at boot (the one the step reads and edits for it). */
  pathFor(ip: ServiceIp): string
  /** Every file it reads and edits for these service IPs (what a step looks at, in one exec). */
  files(ips: ServiceIp[]): string[]
  /** Is `path` (as on a node) one of the files this system configures addresses in? */
  owns(path: string): boolean
  /** Every address the file's text configures, as written. */
  addresses(text: string): string[]
  /** Does the text configure `address` (CIDR or bare)? */
  holds(text: string, address: string): boolean
  /** The text configuring `ip` on its interface too (unchanged when it does already). */
  withAddress(text: string, ip: ServiceIp): string
  /** The text no longer configuring `address`, everything else kept. */
  withoutAddress(text: string, address: string): string
  /** The edits as the runbook prints them. */
  adding(ip: ServiceIp): string
  removing(ip: ServiceIp): string
}

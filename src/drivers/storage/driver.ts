import type {Config} from '../../config/schema.js'

/** The ways the shared storage can move, as the config names them (storage.kind). */
export type StorageKind = Config['storage']['kind']

/**
 * Where the storage is attached, as one host's probe answered: not here, here (what the probe
 * said about it), or unknown (why).
 */
export type Attachment = {error: string} | {held: false} | {detail: Record<string, unknown>; held: true}

/**
 * One way the shared storage moves between the nodes (one storage.kind), chosen from the config
 * in one place (storageDriver in ./index.ts). The failover's steps, ha check, ha backup and the
 * roles ask the driver what to run and how to read the answers; none of them names a kind.
 *
 * A new kind (LVM, say) is one file implementing this, plus its line in ./index.ts.
 */
export interface StorageDriver {
  readonly kind: StorageKind

  // How it observes.

  /**
   * Does ha know where the storage is attached? Only kind none says no: the probe may run, but
   * no node counts as holding the storage and nothing checks where data_dir lives.
   */
  readonly tracked: boolean
  /** The argv that tells whether the storage is attached to a host (data_dir already under the host's root). */
  probeArgv(dataDirOnHost: string): string[]
  /** What that argv's exit status and output say. */
  interpret(code: number, stdout: string, stderr: string): Attachment
  /** The device the attached storage must come from, when the config names one (mount's storage.device). */
  readonly device?: DeviceRule

  // What it changes (and so what the runbook plans).

  /** ha's own commands that attach and detach it; none when ha does not move it (manual, none). */
  readonly commands?: StorageCommands
  /** The operator moves it (a SAN console, a cable) while ha failover waits and watches (manual). */
  readonly operatorMoves: boolean
  /** Its line in a node's boot configuration (mount: /etc/fstab); none when nothing in /etc attaches it at boot. */
  readonly boot?: StorageBootEntry

  // How it is described (ha check, ha backup).

  readonly words: StorageWords
  /** What in the config keeps ha from telling where it is at all (zfs without a pool). */
  configProblem(): undefined | {action: string; summary: string}
  /** Keys ha failover's own attach needs that the config leaves unset (mount without storage.device), each with what it is for. */
  failoverNeeds(): Array<{key: string; why: string}>
  /** Attached, but not as the config says (mount: another fstype than storage.fstype): why, as "… but <why>". */
  heldProblem(detail: Record<string, unknown>): undefined | {action: string; why: string}

  // Under a cluster manager (ha cluster setup).

  /**
   * The stock Pacemaker resource agent that attaches the storage where the cluster runs the
   * service, with its parameters; or why there is none (the cluster cannot move what a person
   * moves, nor what does not exist).
   */
  pacemaker(): PacemakerStorage
}

/** How Pacemaker attaches the storage: an OCF agent of the stock resource-agents package, or a refusal. */
export type PacemakerStorage =
  | {params: Array<[string, string]>; provider: string; type: string}
  | {refused: {action: string; summary: string}}

export interface StorageCommands {
  /** Attach it to the node it runs on (mount, zpool import). */
  attach: string[]
  /** Detach it from the node it runs on, never forced (umount, zpool export). */
  detach: string[]
  /**
   * Ask `fuser -m` what holds it before detaching: a busy filesystem aborts naming the processes
   * (an ha backup alone is waited for). The release-storage step plans fuser for every kind ha
   * moves; only the kinds saying so here act on it.
   */
  holdersFirst: boolean
}

/**
 * The storage's entry in a node's boot configuration: the node that has it attaches the storage
 * again at its next boot, so the failover takes it out on the node giving the storage up and
 * puts it in on the node taking over. Pure text edits of one file.
 */
export interface StorageBootEntry {
  /** The file the entry lives in. */
  path: string
  /** The edits as the runbook prints them. */
  adding: string
  removing: string
  /** Why a node still having the entry is not a standby (ha rejoin). */
  stillThere: string
  holds(text: string): boolean
  /** The file's text with the entry (unchanged when it is there). */
  added(text: string): string
  /** The file's text without it. */
  removed(text: string): string
}

/**
 * A device named in the config must be the one attached: another filesystem at data_dir (a
 * leftover test mount, the wrong LUN) is not the shared storage.
 */
export interface DeviceRule {
  /** As the config names it. */
  device: string
  /**
   * For a node over ssh: prints the device and the source attached at data_dir, each with
   * symlinks resolved on that node (a line left empty when it cannot be resolved).
   */
  probeArgv(dataDirOnHost: string): string[]
  /**
   * `want` and `have`, the device and the attached source with symlinks resolved on the host in
   * question: an error attachment when they differ.
   */
  mismatch(dataDirOnHost: string, attachment: Attachment, want: string, have: string): {error: string} | undefined
}

/** How ha check and ha backup name the storage and its state. */
export interface StorageWords {
  /** The storage as a summary names it: data_dir, or pool NAME. */
  what: string
  /** Its attached state: mounted, imported. */
  verb: string
  /** ha check's row title. */
  title: string
  /** A held attachment's detail for a summary, with its leading space (" from /dev/sdb1 (ext4)"). */
  held(detail: Record<string, unknown>): string
  /** ha backup's reason on a node the storage is not attached to. */
  notHere(dataDirOnHost: string): string
  /** ha check's evidence of where it was looked for, from data_dir under each node's root. */
  evidence(mountpoints: Record<string, string>): Record<string, unknown>
}

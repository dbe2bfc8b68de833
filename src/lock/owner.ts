import {processStillRuns} from '../facts/process.js'

/** Who holds a lock, as its file names them: host, machine id, boot id, pid and the pid's start time. */
export interface LockOwner {
  boot_id: string
  command: string
  host: string
  /** /etc/machine-id of the holder's machine: never cloned, so it tells hosts apart after a takeover copied the hostname. */
  machine_id?: string
  /** The configured node name of the holder. */
  node?: string
  pid: number
  since: string
  start_ticks: string
}

const printable = (max: number) => (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= max && /^[\x20-\x7e]+$/.test(v)

/** The owner a lock names, or why it is not a lock ha wrote. */
export function lockOwnerProblem(bytes: Buffer): LockOwner | string {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', {fatal: true}).decode(bytes))
  } catch {
    return 'is not a JSON lock record (damaged, or not written by ha)'
  }

  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JSON object'
  const v = value as Record<string, unknown>
  const checks: Array<[string, (x: unknown) => boolean, boolean]> = [
    ['boot_id', printable(64), true],
    ['command', printable(200), true],
    ['host', (x) => typeof x === 'string' && /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(x), true],
    ['machine_id', (x) => typeof x === 'string' && /^[0-9a-f]{32}$|^unknown$/.test(x), false],
    ['node', (x) => x === 'primary' || x === 'secondary', false],
    ['pid', (x) => Number.isSafeInteger(x) && (x as number) > 0 && (x as number) <= 4_194_304, true],
    ['since', (x) => typeof x === 'string' && x.length <= 40 && !Number.isNaN(Date.parse(x)), true],
    ['start_ticks', (x) => typeof x === 'string' && /^\d{0,20}$/.test(x), true],
  ]
  for (const [key, ok, required] of checks) {
    if (!(key in v)) {
      if (required) return `has no "${key}"`
      continue
    }

    if (!ok(v[key])) return `has an invalid "${key}"`
  }

  const known = new Set(checks.map(([k]) => k))
  const extra = Object.keys(v).find((k) => !known.has(k))
  if (extra) return `has an unknown field "${extra.slice(0, 40)}"`
  return v as unknown as LockOwner
}

/** Same machine and boot: only then can this host see the holder's process. */
export function isThisHost(holder: LockOwner, me: {host: string; machine_id?: string}): boolean {
  if (holder.host !== me.host) return false
  return holder.machine_id === undefined || me.machine_id === undefined || holder.machine_id === me.machine_id
}

export async function ownerIsAlive(owner: LockOwner): Promise<boolean> {
  return processStillRuns(owner)
}

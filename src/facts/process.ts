import {readFile} from 'node:fs/promises'

/** This machine's boot and identity, and when a process started: what tells a live lock holder from a recycled pid. */
export async function currentBootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim()
}

export async function currentMachineId(): Promise<string> {
  const id = (await readFile('/etc/machine-id', 'utf8').catch(() => '')).trim()
  return /^[0-9a-f]{32}$/.test(id) ? id : 'unknown'
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export async function processStartTicks(pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return startTicksOf(text)
}

export function startTicksOf(statText: string): string {
  const afterComm = statText.slice(statText.lastIndexOf(')') + 2).split(' ')
  return afterComm[19] ?? ''
}

/**
 * Whether the process a record names (a lock's owner, a claim's or a journal's holder, all taken
 * on this machine) still runs: the same boot, and its pid started at the same moment (a recycled
 * pid did not).
 */
export async function processStillRuns(holder: {boot_id: string; pid: number; start_ticks: string}): Promise<boolean> {
  if (holder.boot_id !== (await currentBootId())) return false
  const ticks = await processStartTicks(holder.pid).catch(() => undefined)
  return ticks !== undefined && ticks === holder.start_ticks
}

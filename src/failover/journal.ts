import {randomBytes} from 'node:crypto'
import {constants} from 'node:fs'
import {mkdir, open, readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {NodeName} from '../config/schema.js'
import {nodeNames} from '../config/schema.js'
import {HaError} from '../core/errors.js'

/**
 * The failover journal: one JSON record per line, appended and fsync'd before the step it
 * announces does anything, where ha failover runs (/var/lib/ha/failover/<run>.jsonl, or
 * $HA_FAILOVER_DIR) and, once the storage is attached to the node taking over, on the storage
 * too. `--resume` reads the local one back: it says which run, which direction, what each step
 * learnt (boot id before the reboot, the host keys in the backup) and who confirmed fencing.
 */
export type JournalRecord =
  | {type: 'run'; kind?: 'failover' | 'rejoin'; run_id: string; from: NodeName; to: NodeName; by: string; at: string; epoch_before: number; plan: string[]; holder?: RunHolder}
  | {type: 'step'; id: string; event: 'done' | 'failed' | 'skipped' | 'started' | 'stopped'; at: string; duration_ms?: number; data?: Record<string, unknown>; error?: string}
  | {type: 'action'; step: string; on: string; action: string; at: string}
  | {type: 'data'; step: string; data: Record<string, unknown>; at: string}
  | {type: 'fenced'; node: NodeName; by: string; how: 'flag' | 'typed'; at: string}
  | {type: 'end'; status: 'aborted' | 'done' | 'forgotten' | 'refused'; at: string; by?: string}

/** The process that started a run, on this machine: whether it still runs is read from /proc. */
export interface RunHolder {
  boot_id: string
  pid: number
  start_ticks: string
}

export function failoverDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HA_FAILOVER_DIR || '/var/lib/ha/failover'
}

export function newRunId(): string {
  return `${new Date().toISOString().replaceAll(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`
}

export class Journal {
  private mirror?: (text: string, whole: boolean) => Promise<void>
  private mirrorWhole = false
  /** Lines not yet on the storage, and the write carrying the previous ones. */
  private mirrorPending = ''
  private mirrorFlight?: Promise<void>

  private constructor(
    readonly path: string,
    readonly records: JournalRecord[],
  ) {}

  static async create(runId: string, dir = failoverDir()): Promise<Journal> {
    await mkdir(dir, {mode: 0o700, recursive: true})
    const path = join(dir, `${runId}.jsonl`)
    const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    await handle.close()
    return new Journal(path, [])
  }

  static async load(path: string): Promise<Journal> {
    return new Journal(path, parseJournal(await readFile(path, 'utf8'), path))
  }

  get header(): Extract<JournalRecord, {type: 'run'}> {
    const run = this.records[0]
    if (run?.type !== 'run') throw new HaError(`${this.path}: the journal does not start with its run record`)
    return run
  }

  get finished(): boolean {
    return this.records.some((r) => r.type === 'end')
  }

  /** The newest record for step `id`, and the data every record of that step carried, merged. */
  stepState(id: string): {data: Record<string, unknown>; last?: string} {
    const data: Record<string, unknown> = {}
    let last: string | undefined
    for (const r of this.records) {
      if (r.type === 'step' && r.id === id) last = r.event
      if (r.type === 'data' && r.step === id && typeof r.data === 'object' && r.data !== null) Object.assign(data, r.data)
    }

    return {data, last}
  }

  lastCompleted(): string | undefined {
    return this.records.filter((r) => r.type === 'step' && (r.event === 'done' || r.event === 'skipped')).map((r) => (r as {id: string}).id).at(-1)
  }

  fencing(): Extract<JournalRecord, {type: 'fenced'}> | undefined {
    return this.records.find((r): r is Extract<JournalRecord, {type: 'fenced'}> => r.type === 'fenced')
  }

  /**
   * From now on every record also goes to the storage, the whole journal first (`whole`: the text
   * replaces what is there, so a copy a killed run left behind is made complete on --resume).
   * The local journal is the one fsync'd before each step acts; the storage copy follows behind it:
   * records that arrive while a write is under way go together in the next one (a round trip per
   * record cost more than the steps did), and flushMirror() waits until all are there.
   */
  mirrorTo(write: (text: string, whole: boolean) => Promise<void>): void {
    this.mirror = write
    this.mirrorWhole = true
    this.mirrorFlight ??= this.drainMirror()
  }

  /** Every record appended so far is on the storage (or its write failed and was reported). */
  async flushMirror(): Promise<void> {
    await this.mirrorFlight
  }

  private async drainMirror(): Promise<void> {
    try {
      while (this.mirrorWhole || this.mirrorPending) {
        const whole = this.mirrorWhole
        const text = whole ? this.records.map((r) => `${JSON.stringify(r)}\n`).join('') : this.mirrorPending
        this.mirrorWhole = false
        this.mirrorPending = ''
        // eslint-disable-next-line no-await-in-loop -- one write at a time keeps the lines in order
        await this.mirror!(text, whole)
      }
    } finally {
      this.mirrorFlight = undefined
    }
  }

  async append(record: JournalRecord): Promise<void> {
    if (sealed) await sealed
    const line = `${JSON.stringify(record)}\n`
    const write = (async () => {
      const handle = await open(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW)
      try {
        await handle.write(line)
        await handle.sync()
      } finally {
        await handle.close()
      }

      this.records.push(record)
      if (this.mirror) {
        this.mirrorPending += line
        this.mirrorFlight ??= this.drainMirror()
      }
    })()
    writing.add(write)
    try {
      await write
    } finally {
      writing.delete(write)
    }
  }
}

const writing = new Set<Promise<void>>()
let sealed: Promise<never> | undefined

/**
 * For an exit in the middle of a step (a second Ctrl-C): no journal record starts from now on,
 * and this resolves once those being written are whole (or after `waitMs`, a hung mirror aside).
 */
export async function sealJournals(waitMs: number): Promise<void> {
  sealed ??= new Promise<never>(() => {})
  await Promise.race([Promise.allSettled([...writing]), new Promise((resolve) => {
    setTimeout(resolve, waitMs).unref()
  })])
}

function parseJournal(text: string, path: string): JournalRecord[] {
  const records: JournalRecord[] = []
  const lines = text.split('\n')
  for (const [i, line] of lines.entries()) {
    if (line === '') continue
    let r: JournalRecord
    try {
      r = JSON.parse(line) as JournalRecord
    } catch {
      // A crash can cut the last line short; anything else is damage.
      if (i === lines.length - 1 || (i === lines.length - 2 && lines.at(-1) === '')) break
      throw new HaError(`${path}:${i + 1}: not a journal record`, {actions: [`look at ${path}; move it away to start a new failover`]})
    }

    if (typeof r !== 'object' || r === null || !['action', 'data', 'end', 'fenced', 'run', 'step'].includes(r.type)) {
      throw new HaError(`${path}:${i + 1}: not a journal record`, {actions: [`look at ${path}`]})
    }

    if (r.type === 'run' && (!nodeNames.includes(r.from) || !nodeNames.includes(r.to) || r.from === r.to)) {
      throw new HaError(`${path}:${i + 1}: the run record names no valid direction`, {actions: [`look at ${path}`]})
    }

    records.push(r)
  }

  return records
}

/** Every journal in the folder, newest first. */
export async function listJournals(dir = failoverDir()): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  return names
    .filter((n) => /^[\w.-]+\.jsonl$/.test(n))
    .sort()
    .reverse()
    .map((n) => join(dir, n))
}

/** The failover that has not ended, if any (there is at most one: a new run refuses while one is open). */
export async function unfinishedJournal(dir = failoverDir()): Promise<Journal | undefined> {
  for (const path of await listJournals(dir)) {
    const journal = await Journal.load(path)
    // A rejoin is not a failover in progress: it is simply run again.
    if (!journal.finished && journal.header.kind !== 'rejoin') return journal
  }

  return undefined
}

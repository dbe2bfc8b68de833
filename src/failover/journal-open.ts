/**
 * The run's journal as the runner keeps it: opened (or taken over from the run being resumed)
 * before any step, and mirrored onto the storage once the storage is attached to the node taking
 * over. The record format, fsync and the mirror's batching are journal.ts.
 */
import {hostname, userInfo} from 'node:os'
import {dirname, join} from 'node:path'

import type {Config, NodeName} from '../config/schema.js'
import {ExitCode, HaError} from '../core/errors.js'
import {currentBootId, processStartTicks} from '../facts/process.js'
import {writeOwnFileOn} from '../hosts/own-file-write.js'
import type {FailoverNodes} from '../pair/nodes.js'
import {failoverSteps} from '../steps/index.js'
import {rejoinSteps} from '../steps/rejoin.js'
import {Journal} from './journal.js'
import type {Prepared} from './prepare.js'

/** Who confirmed the active node fenced, and how (--fenced, or typed at the prompt). */
export interface Fencing {
  by: string
  how: 'flag' | 'typed'
  node: string
}

/** Who is running this, for the journal and the epoch. */
export function operator(): string {
  return `${userInfo().username}@${hostname()}`
}

/**
 * The unfinished run's journal on --resume; otherwise a new one, its run record written first.
 * A fencing confirmed by the operator is journalled once, and only for the active node.
 */
export async function openRunJournal(prepared: Prepared, options: {config: Config; fenced?: Fencing; rejoin?: boolean}): Promise<Journal> {
  const {config} = options
  const {from, runId, to} = prepared
  const journal = prepared.resume ?? (await Journal.create(runId))
  if (!prepared.resume) {
    await journal.append({
      at: new Date().toISOString(),
      by: operator(),
      epoch_before: prepared.roles?.epoch ?? 0,
      from,
      holder: {boot_id: await currentBootId(), pid: process.pid, start_ticks: await processStartTicks(process.pid)},
      kind: options.rejoin ? 'rejoin' : 'failover',
      plan: (options.rejoin ? rejoinSteps(config) : failoverSteps(config)).map((s) => s.id),
      run_id: runId,
      to,
      type: 'run',
    })
  }

  if (options.fenced) {
    if (options.fenced.node !== from) {
      throw new HaError(`--fenced ${options.fenced.node}: the active node is ${from} (${config.nodes[from].hostname}); only it can be confirmed fenced`, {exitCode: ExitCode.usage})
    }

    if (!journal.fencing()) await journal.append({at: new Date().toISOString(), by: options.fenced.by, how: options.fenced.how, node: from, type: 'fenced'})
  }

  return journal
}

/**
 * The journal's copy on the storage, <data_dir>/.ha/failover/<run>.jsonl on the node taking over:
 * started once, when the storage is attached there (after acquire-storage, or on a resume past
 * it). A write that fails is a warning: the local journal is the one the run stands on.
 */
export class StorageMirror {
  readonly path: string
  private started = false

  constructor(
    private readonly journal: Journal,
    private readonly nodes: FailoverNodes,
    private readonly to: NodeName,
    config: Config,
    runId: string,
    private readonly onWarning: (message: string) => void,
  ) {
    this.path = join(config.data_dir, '.ha', 'failover', `${runId}.jsonl`)
  }

  start(): void {
    if (this.started) return
    this.started = true
    this.journal.mirrorTo((text, whole) => this.write(text, whole))
  }

  private async write(text: string, whole: boolean): Promise<void> {
    try {
      const host = await this.nodes.get(this.to)
      await writeOwnFileOn(host, this.path, text, {append: !whole, folders: [dirname(dirname(this.path)), dirname(this.path)]})
    } catch (error) {
      this.onWarning(`could not append to the journal on the storage (${this.path} on ${this.to}): ${(error as Error).message}`)
    }
  }
}

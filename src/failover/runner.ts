import {setTimeout as sleep} from 'node:timers/promises'

import type {Config, NodeName} from '../config/schema.js'
import {ExitCode, HaError, InterruptedError} from '../core/errors.js'
import {SshConnectError, SshConnectionLost} from '../hosts/ssh-host.js'
import type {FailoverNodes} from '../pair/nodes.js'
import {failoverSteps} from '../steps/index.js'
import {forgetObservations, stopRemembering} from '../steps/observe.js'
import {putBackSteps} from '../steps/put-back.js'
import {rejoinSteps} from '../steps/rejoin.js'
import {BeforeMoveError, type Step, type StepContext} from '../steps/step.js'
import {FailoverStopped, resumeCommand, silentActiveActions} from './errors.js'
import type {Journal} from './journal.js'
import {nodeLabels} from './plan.js'
import type {Prepared} from './prepare.js'
import {type Fencing, openRunJournal, StorageMirror} from './journal-open.js'
import {RunClaims} from './run-claims.js'
import {type RunState, stepContext} from './step-context.js'

export interface StepEvent {
  type: 'step'
  step: string
  title: string
  /** stopped: interrupted (Ctrl-C, SIGTERM) before it ended; neither done nor failed, --resume re-checks it. */
  event: 'done' | 'failed' | 'skipped' | 'started' | 'stopped'
  duration_ms?: number
  error?: string
}

export interface FailoverResult {
  /** --abort: the active node was put back and the run ended. */
  aborted: boolean
  run_id: string
  from: NodeName
  to: NodeName
  epoch: number
  journal: string
  /** waiting_ms: the part of duration_ms spent waiting on the world (as waiting_ms below). */
  steps: Array<{id: string; status: 'done' | 'skipped'; duration_ms: number; waiting_ms: number}>
  /** Every action run, in order (as the plan prints them). */
  ran: Array<{step: string; action: string}>
  wall_ms: number
  /** Time spent waiting on reboots, service start/stop and sleeps. */
  waiting_ms: number
  /** What ha itself took: wall_ms - waiting_ms. */
  ha_ms: number
  resumed: boolean
}

export interface FailoverOptions {
  /** ha rejoin: `from` is the node rejoining, `to` the active node; these steps instead of the failover's. */
  rejoin?: boolean
  /** Put the active node back instead of going on (only before the storage moved). */
  abort?: boolean
  config: Config
  fenced?: Fencing
  onEvent?: (event: StepEvent) => void
  onProgress?: (message: string) => void
  onWarning?: (message: string) => void
  signal?: AbortSignal
}

/** ha failover, --abort, --resume and ha rejoin: the journal opened first, then the steps, one by one. */
export async function runFailover(prepared: Prepared & {nodes: FailoverNodes}, options: FailoverOptions): Promise<FailoverResult> {
  const started = Date.now()
  const journal = await openRunJournal(prepared, options)
  const fencing = journal.fencing()
  if (fencing) prepared.nodes.confirmFenced(fencing.node)
  const claims = new RunClaims(prepared.nodes, {from: prepared.from, kind: options.rejoin ? 'rejoin' : 'failover', run_id: prepared.runId, to: prepared.to})
  try {
    await claims.take()
  } catch (error) {
    // Lost the race to another run: nothing was done, and this run's journal says so, so that
    // nothing of it stands in the next run's way (a resumed run's journal is the live run's own).
    if (!prepared.resume) await journal.append({at: new Date().toISOString(), status: 'refused', type: 'end'})
    await prepared.nodes.closeAll()
    throw error
  }

  return new FailoverRunner(prepared, options, journal, started, claims).run()
}

/**
 * One run over the steps: the step context they act through (step-context.ts), the journal and
 * its mirror on the storage (run-journal.ts), the loop (each step skipped when its outcome holds,
 * else run and proven), what a failed step makes of the run, and the wait for a node that was
 * rebooting when a resumed run stopped.
 */
export class FailoverRunner implements RunState {
  readonly config: Config
  readonly from: NodeName
  readonly to: NodeName
  readonly runId: string
  readonly nodes: FailoverNodes
  readonly labels: Record<NodeName, string>
  readonly ran: FailoverResult['ran'] = []
  readonly killIn = process.env.HA_FAILOVER_TEST_KILL_IN
  current?: Step
  waitingMs = 0
  readonly silentOnWire = new Map<string, number>()
  private readonly results: FailoverResult['steps'] = []
  private readonly mirror: StorageMirror
  private readonly ctx: StepContext

  constructor(
    private readonly prepared: Prepared & {nodes: FailoverNodes},
    readonly options: FailoverOptions,
    readonly journal: Journal,
    private readonly started: number,
    private readonly claims: RunClaims,
  ) {
    this.config = options.config
    this.from = prepared.from
    this.to = prepared.to
    this.runId = prepared.runId
    this.nodes = prepared.nodes
    this.labels = nodeLabels(this.config)
    this.mirror = new StorageMirror(journal, this.nodes, this.to, this.config, this.runId, (m) => options.onWarning?.(m))
    this.ctx = stepContext(this)
  }

  async run(): Promise<FailoverResult> {
    let aborted = false
    try {
      if (this.options.rejoin) {
        await this.execute(rejoinSteps(this.config)).catch((error: unknown) => {
          throw rejoinStop(error, this.current!, this.from)
        })
        await this.end('done')
      } else if (this.options.abort) {
        await this.abort()
        aborted = true
      } else {
        await this.failover()
      }
    } finally {
      await this.journal.flushMirror()
      // An ended run lets go of the pair, and so does a rejoin however it ended (it is run again,
      // never resumed); a stopped failover keeps it until --resume (its holder is gone then).
      if (this.journal.finished || this.options.rejoin) await this.claims.release(this.options.onWarning)
      stopRemembering()
      await this.nodes.closeAll()
    }

    const wall = Date.now() - this.started
    return {
      aborted,
      epoch: Number(this.journal.stepState('acquire-storage').data.epoch ?? 0),
      from: this.from,
      ha_ms: wall - this.waitingMs,
      journal: this.journal.path,
      ran: this.ran,
      resumed: Boolean(this.prepared.resume),
      run_id: this.runId,
      steps: this.results,
      to: this.to,
      waiting_ms: this.waitingMs,
      wall_ms: wall,
    }
  }

  /** --abort: the active node back into service as it was, only while the storage has not moved. */
  private async abort(): Promise<void> {
    if (this.storageMoved()) {
      throw new HaError(`the storage has already moved to ${this.to} in this run: too late to abort`, {actions: [`finish the failover: ${resumeCommand}`]})
    }

    await this.execute(putBackSteps(this.config))
    await this.end('aborted')
  }

  private async failover(): Promise<void> {
    if (this.prepared.resume) await this.awaitRebootingNode()
    if (this.prepared.resume && this.journal.stepState('acquire-storage').last === 'done') this.mirror.start()
    try {
      await this.execute(failoverSteps(this.config))
    } catch (error) {
      await this.failed(error)
    }

    await this.end('done')
  }

  /** A failover step failed (this.current): the run is over, put back, or stopped to be resumed. */
  private async failed(error: unknown): Promise<never> {
    const failed = this.current!
    const settled = !(error instanceof FailoverStopped) && !(error instanceof InterruptedError)
    // A preflight that fails, or a refused fencing, changed nothing: the run is over. Except a
    // resumed run whose active node fell silent and is not confirmed fenced yet: the steps before
    // may have changed much, so it stays open, to be resumed with the fencing confirmed.
    if ((failed.id === 'preflight' || failed.id === 'confirm-fenced') && settled) {
      if (this.prepared.resume && failed.id === 'confirm-fenced' && error instanceof HaError && error.exitCode === ExitCode.needsConfirmation) throw fencingOnResume(error, this.from)
      await this.end('aborted')
      throw error
    }

    // Stopped for safety before the storage moved (busy storage, an IP that will not go):
    // the active node goes back into service as it was, and the run is over. Not when a node
    // stopped answering: what ha cannot see it does not put back.
    const storageMoved = this.storageMoved()
    if ((failed.id === 'release-ips' || failed.id === 'release-storage') && error instanceof HaError && settled && !silentNode(error) && !this.ctx.data('confirm-fenced').confirmed && !storageMoved) {
      await this.putBackAfter(error, failed)
    }

    throw this.asStop(error, failed)
  }

  /** A lost connection or an interruption is a stop at this step's boundary; other failures keep their code and say how to go on. */
  private asStop(error: unknown, step: Step): Error {
    const silent = silentNode(error)
    if (!silent) return asStop(error, step)
    const {actions, details, message} = error as HaError
    const said = `${message.startsWith(`${step.id}:`) ? message : `${step.id}: ${message}`}; stopped mid-way`
    // The active node went silent before it was confirmed fenced: --abort cannot reach it.
    if (silent === this.from && !this.ctx.data('confirm-fenced').confirmed) {
      return new FailoverStopped(said, [...silentActiveActions(this.from, this.labels[this.from]), ...actions], details, {ordered: true})
    }

    return new FailoverStopped(said, actions, details)
  }

  private async putBackAfter(error: HaError, failed: Step): Promise<never> {
    try {
      await this.execute(putBackSteps(this.config))
      await this.end('aborted')
    } catch (putBack) {
      const said = `${error.message}\nand putting ${this.labels[this.from]} back failed too: ${(putBack as Error).message}`
      // --abort needs the active node: when it stopped answering, resume (or fence it) instead.
      if (silentNode(putBack) === this.from) throw new FailoverStopped(said, silentActiveActions(this.from, this.labels[this.from]), undefined, {ordered: true})
      throw new HaError(said, {actions: [`ha failover --abort to try again, or ${resumeCommand}`], exitCode: ExitCode.stoppedMidway})
    }

    throw new HaError(`${failed.id}: ${error.message.replace(/^[\w-]+: /, '')}\nThe failover was aborted: ${this.labels[this.from]} has its storage, service IPs and services back, as before.`, {
      // The run is over: --resume and --abort no longer apply; what does is a new ha failover.
      actions: error instanceof BeforeMoveError ? error.afterPutBack : error.actions.filter((a) => !a.includes('ha failover')),
      details: error.details,
      exitCode: error.exitCode,
    })
  }

  private storageMoved(): boolean {
    return this.journal.records.some((r) => r.type === 'action' && r.step === 'acquire-storage')
  }

  private async end(status: 'aborted' | 'done'): Promise<void> {
    await this.journal.append({at: new Date().toISOString(), status, type: 'end'})
  }

  private async execute(steps: Step[]): Promise<void> {
    for (const step of steps) {
      if (this.options.signal?.aborted) throw new FailoverStopped(`stopped before ${step.id} (interrupted); nothing is half done`)
      this.current = step
      await this.claims.confirm(step.on(this.ctx))
      await this.runStep(step)
    }
  }

  private async runStep(step: Step): Promise<void> {
    this.current = step
    const t0 = Date.now()
    const waitedBefore = this.waitingMs
    // Each step proves its own postcondition on the hosts as they are now.
    forgetObservations()
    await this.emit(step, 'started')
    try {
      const status = await this.bringAbout(step)
      await this.emit(step, status, {duration_ms: Date.now() - t0})
      this.results.push({duration_ms: Date.now() - t0, id: step.id, status, waiting_ms: this.waitingMs - waitedBefore})
      if (step.id === 'acquire-storage') this.mirror.start()
    } catch (error) {
      const message = (error as Error).message
      // Interrupted is not failed: the step did not end, and --resume re-checks it.
      await this.emit(step, error instanceof InterruptedError ? 'stopped' : 'failed', {duration_ms: Date.now() - t0, error: message.split('\n')[0]})
      throw error
    }
  }

  /** Skipped when the step's outcome already holds; otherwise it runs, and its outcome must then hold. */
  private async bringAbout(step: Step): Promise<'done' | 'skipped'> {
    const {ctx} = this
    if (await step.post(ctx)) return 'skipped'
    const why = await step.pre?.(ctx)
    if (why) throw new HaError(`${step.id}: cannot start: ${why}`, {actions: [`fix that, then ${resumeCommand}`]})
    await step.run(ctx)
    if (!(await step.post(ctx))) throw new HaError(`${step.id}: ran, but what it must achieve does not hold`, {actions: [`look at ${step.on(ctx) === 'here' ? 'this host' : this.labels[step.on(ctx) as NodeName]}, then ${resumeCommand}`]})
    return 'done'
  }

  private async emit(step: Step, event: StepEvent['event'], extra: {duration_ms?: number; error?: string} = {}): Promise<void> {
    await this.journal.append({at: new Date().toISOString(), event, id: step.id, type: 'step', ...extra})
    this.options.onEvent?.({type: 'step', step: step.id, event, title: step.title, ...extra})
  }

  /**
   * A run stopped while the node taking over was rebooting (the reboot asked, not yet seen done):
   * every step's postcondition looks at that node, so wait for it to answer first, as the reboot
   * step would (up to failover.reboot_timeout; then the steps say what is wrong).
   */
  private async awaitRebootingNode(): Promise<void> {
    const reboot = this.journal.stepState('reboot')
    if (reboot.data.boot_before === undefined || reboot.last === 'done' || reboot.last === 'skipped') return
    if (await this.nodes.reachable(this.to)) return
    const limit = this.config.failover.reboot_timeout
    this.options.onProgress?.(`${this.to} was rebooting when the run stopped; waiting for it to answer (up to ${limit}s)`)
    const t0 = Date.now()
    try {
      while (Date.now() - t0 < limit * 1000 && !this.options.signal?.aborted) {
        // eslint-disable-next-line no-await-in-loop -- polling, bounded by reboot_timeout
        await sleep(250)
        // eslint-disable-next-line no-await-in-loop
        if (await this.nodes.reachable(this.to)) return
      }
    } finally {
      this.waitingMs += Date.now() - t0
    }
  }
}

/** The node that stopped answering ssh, when that is what the error is: a connection lost under a command, or one that cannot be made. */
function silentNode(error: unknown): string | undefined {
  if (error instanceof SshConnectionLost) return error.node
  if (error instanceof SshConnectError && ['refused', 'ssh_error', 'timeout', 'unreachable'].includes(error.kind)) return String(error.details?.node)
  return undefined
}

/** A resumed run that meets a silent active node: the fencing is confirmed on the resume itself. */
function fencingOnResume(error: HaError, from: string): HaError {
  return new HaError(error.message, {actions: [`make sure ${from} is off, then confirm it: ${resumeCommand} --fenced ${from} --yes`], details: error.details, exitCode: error.exitCode})
}

/** A rejoin interrupted is stopped at this step's boundary (exit 5); it goes on by being run again. */
function rejoinStop(error: unknown, step: Step, node: string): unknown {
  if (!(error instanceof InterruptedError)) return error
  return new FailoverStopped(`interrupted during ${step.id}${error.message === 'interrupted' ? '' : ` (${error.message})`}`, [`ha rejoin ${node}`], undefined, {ordered: true})
}

/** An interruption is a stop at this step's boundary; other failures keep their code and say how to go on. */
function asStop(error: unknown, step: Step): Error {
  if (error instanceof FailoverStopped) return error
  if (error instanceof InterruptedError) return new FailoverStopped(`interrupted during ${step.id}${error.message === 'interrupted' ? '' : ` (${error.message})`}; the journal has every step so far`)
  if (error instanceof SshConnectError) return new FailoverStopped(`${step.id}: ${error.message}`, error.actions)
  if (error instanceof HaError) {
    if (error.exitCode === ExitCode.stoppedMidway) return new FailoverStopped(error.message, error.actions, error.details)
    const actions = error.actions.some((a) => a.includes('ha failover')) ? error.actions : [...error.actions, `then: ${resumeCommand}`]
    return new HaError(error.message.startsWith(`${step.id}:`) ? error.message : `${step.id}: ${error.message}`, {actions, details: error.details, exitCode: error.exitCode})
  }

  const message = (error as Error).message ?? String(error)
  // The ssh2 channel dying under us (the node went away mid-command) is a lost connection.
  if (/No response from server|Not connected|socket|ECONNRESET|channel/i.test(message)) return new FailoverStopped(`${step.id}: lost the connection: ${message}`)
  return error as Error
}

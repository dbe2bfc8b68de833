import {hostname, userInfo} from 'node:os'
import {dirname, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Config, NodeName} from '../config/schema.js'
import {ExitCode, HaError, InterruptedError} from '../core/errors.js'
import {HostCommandError, type RunResult} from '../hosts/host.js'
import {appendKnownHost} from '../hosts/known-hosts-append.js'
import {writeOwnFileOn} from '../hosts/own-file-write.js'
import {fingerprint} from '../hosts/ssh-key-blob.js'
import {SshConnectError} from '../hosts/ssh-host.js'
import {failoverSteps} from '../steps/index.js'
import {forgetObservations, observedStat, stopRemembering} from '../steps/observe.js'
import {putBackSteps} from '../steps/put-back.js'
import {rejoinSteps} from '../steps/rejoin.js'
import {type Action, type ActOptions, describeAction, sameAction, type Step, type StepContext} from '../steps/step.js'
import {FailoverStopped, resumeCommand} from './errors.js'
import {Journal} from './journal.js'
import type {FailoverNodes} from '../pair/nodes.js'
import {nodeLabels} from './plan.js'
import type {Prepared} from './prepare.js'

export interface StepEvent {
  type: 'step'
  step: string
  title: string
  event: 'done' | 'failed' | 'skipped' | 'started'
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
  fenced?: {by: string; how: 'flag' | 'typed'; node: string}
  onEvent?: (event: StepEvent) => void
  onProgress?: (message: string) => void
  onWarning?: (message: string) => void
  signal?: AbortSignal
}

/** Who is running this, for the journal and the epoch. */
export function operator(): string {
  return `${userInfo().username}@${hostname()}`
}

export async function runFailover(prepared: Prepared & {nodes: FailoverNodes}, options: FailoverOptions): Promise<FailoverResult> {
  const {config} = options
  const {from, nodes, runId, to} = prepared
  const started = Date.now()
  let waitingMs = 0
  const journal = prepared.resume ?? (await Journal.create(runId))
  if (!prepared.resume) {
    await journal.append({
      at: new Date().toISOString(),
      by: operator(),
      epoch_before: prepared.roles?.epoch ?? 0,
      from,
      kind: options.rejoin ? 'rejoin' : 'failover',
      plan: (options.rejoin ? rejoinSteps : failoverSteps).map((s) => s.id),
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

  const labels = nodeLabels(config)
  const ran: FailoverResult['ran'] = []
  const results: FailoverResult['steps'] = []
  let current: Step | undefined
  const killIn = process.env.HA_FAILOVER_TEST_KILL_IN
  const storageJournal = join(config.data_dir, '.ha', 'failover', `${runId}.jsonl`)

  let mirroring = false
  const mirrorToStorage = () => {
    if (mirroring) return
    mirroring = true
    journal.mirrorTo(async (text, whole) => {
      try {
        const host = await nodes.get(to)
        await writeOwnFileOn(host, storageJournal, text, {append: !whole, folders: [dirname(dirname(storageJournal)), dirname(storageJournal)]})
      } catch (error) {
        options.onWarning?.(`could not append to the journal on the storage (${storageJournal} on ${to}): ${(error as Error).message}`)
      }
    })
  }

  const ctx: StepContext = {
    async act(action: Action, opts: ActOptions = {}): Promise<RunResult> {
      const step = current!
      if (!step.actions(ctx).some((a) => sameAction(a, action))) {
        throw new Error(`step ${step.id} tried an action its plan does not list: ${describeAction(action, labels)}`)
      }

      const shown = describeAction(action, labels)
      await journal.append({action: shown, at: new Date().toISOString(), on: action.on, step: step.id, type: 'action'})
      ran.push({action: shown, step: step.id})
      // A reboot command returns when the node goes down: that is the world's time, as services are.
      const waits = 'argv' in action && action.on !== 'here' && [config.services.start, config.services.stop, config.nodes[action.on].reboot_command].some((a) => a && sameAction({argv: a, on: action.on}, action))
      // The storage's copy of the journal is complete before the node holding it reboots.
      if (action.on === to && 'argv' in action && sameAction({argv: config.nodes[to].reboot_command, on: to}, action)) await journal.flushMirror()
      const t0 = Date.now()
      let result: RunResult
      try {
        result = await carryOut(nodes, step, action, opts)
      } finally {
        forgetObservations('edit' in action ? action.edit : undefined)
      }

      if (waits) waitingMs += Date.now() - t0
      // Tests only: die the hard way in the middle of a step, after its first action.
      if (killIn === step.id) process.kill(process.pid, 'SIGKILL')
      return result
    },
    config,
    data(step: string) {
      if (step === 'run') return {...journal.header}
      return journal.stepState(step).data
    },
    drop: (node) => nodes.drop(node),
    fenced() {
      const f = journal.fencing()
      return f ? {by: f.by, how: f.how} : undefined
    },
    from,
    host: (node) => nodes.get(node),
    progress: (m) => options.onProgress?.(m),
    reachable: (node) => nodes.reachable(node),
    async remember(data) {
      await journal.append({at: new Date().toISOString(), data, step: current!.id, type: 'data'})
      if (current?.id === 'restore-takeover' && Array.isArray(data.expect_keys)) await recordHostKeys(config, to, data.expect_keys as string[], nodes, false)
      if (current?.id === 'restore-takeover' && Array.isArray(data.host_keys)) await recordHostKeys(config, to, data.host_keys as string[], nodes, true)
    },
    runId,
    signal: options.signal,
    to,
    async waiting(work) {
      const t0 = Date.now()
      try {
        return await work()
      } finally {
        waitingMs += Date.now() - t0
      }
    },
  }

  const emit = async (step: Step, event: StepEvent['event'], extra: {duration_ms?: number; error?: string} = {}) => {
    await journal.append({at: new Date().toISOString(), event, id: step.id, type: 'step', ...extra})
    options.onEvent?.({type: 'step', step: step.id, event, title: step.title, ...extra})
  }

  const execute = async (steps: Step[]) => {
    for (const step of steps) {
      if (options.signal?.aborted) throw new FailoverStopped(`stopped before ${step.id} (interrupted); nothing is half done`)
      current = step
      const t0 = Date.now()
      const waitedBefore = waitingMs
      // Each step proves its own postcondition on the hosts as they are now.
      forgetObservations()
      await emit(step, 'started')
      try {
        if (await step.post(ctx)) {
          await emit(step, 'skipped', {duration_ms: Date.now() - t0})
          results.push({duration_ms: Date.now() - t0, id: step.id, status: 'skipped', waiting_ms: waitingMs - waitedBefore})
        } else {
          const why = await step.pre?.(ctx)
          if (why) throw new HaError(`${step.id}: cannot start: ${why}`, {actions: [`fix that, then ${resumeCommand}`]})
          await step.run(ctx)
          if (!(await step.post(ctx))) throw new HaError(`${step.id}: ran, but what it must achieve does not hold`, {actions: [`look at ${step.on(ctx) === 'here' ? 'this host' : labels[step.on(ctx) as NodeName]}, then ${resumeCommand}`]})
          await emit(step, 'done', {duration_ms: Date.now() - t0})
          results.push({duration_ms: Date.now() - t0, id: step.id, status: 'done', waiting_ms: waitingMs - waitedBefore})
        }

        if (step.id === 'acquire-storage') mirrorToStorage()
      } catch (error) {
        const message = (error as Error).message
        await emit(step, 'failed', {duration_ms: Date.now() - t0, error: message.split('\n')[0]})
        throw error
      }
    }
  }

  /**
   * A run stopped while the node taking over was rebooting (the reboot asked, not yet seen done):
   * every step's postcondition looks at that node, so wait for it to answer first, as the reboot
   * step would (up to failover.reboot_timeout; then the steps say what is wrong).
   */
  const awaitRebootingNode = async () => {
    const reboot = journal.stepState('reboot')
    if (reboot.data.boot_before === undefined || reboot.last === 'done' || reboot.last === 'skipped') return
    if (await nodes.reachable(to)) return
    const limit = config.failover.reboot_timeout
    options.onProgress?.(`${to} was rebooting when the run stopped; waiting for it to answer (up to ${limit}s)`)
    const t0 = Date.now()
    try {
      while (Date.now() - t0 < limit * 1000 && !options.signal?.aborted) {
        // eslint-disable-next-line no-await-in-loop -- polling, bounded by reboot_timeout
        await sleep(250)
        // eslint-disable-next-line no-await-in-loop
        if (await nodes.reachable(to)) return
      }
    } finally {
      waitingMs += Date.now() - t0
    }
  }

  let aborted = false
  try {
    if (options.rejoin) {
      await execute(rejoinSteps)
      await journal.append({at: new Date().toISOString(), status: 'done', type: 'end'})
    } else if (options.abort) {
      if (journal.records.some((r) => r.type === 'action' && r.step === 'acquire-storage')) {
        throw new HaError(`the storage has already moved to ${to} in this run: too late to abort`, {actions: [`finish the failover: ${resumeCommand}`]})
      }

      await execute(putBackSteps)
      await journal.append({at: new Date().toISOString(), status: 'aborted', type: 'end'})
      aborted = true
    } else {
      if (prepared.resume) await awaitRebootingNode()
      if (prepared.resume && journal.stepState('acquire-storage').last === 'done') mirrorToStorage()
      try {
        await execute(failoverSteps)
      } catch (error) {
        const failed = current!
        // A preflight that fails, or a refused fencing, changed nothing: the run is over.
        if ((failed.id === 'preflight' || failed.id === 'confirm-fenced') && !(error instanceof FailoverStopped) && !(error instanceof InterruptedError)) {
          await journal.append({at: new Date().toISOString(), status: 'aborted', type: 'end'})
          throw error
        }

        // Stopped for safety before the storage moved (busy storage, an IP that will not go):
        // the active node goes back into service as it was, and the run is over.
        const storageMoved = journal.records.some((r) => r.type === 'action' && r.step === 'acquire-storage')
        if ((failed.id === 'release-ips' || failed.id === 'release-storage') && error instanceof HaError && !(error instanceof FailoverStopped) && !ctx.data('confirm-fenced').confirmed && !storageMoved) {
          try {
            await execute(putBackSteps)
            await journal.append({at: new Date().toISOString(), status: 'aborted', type: 'end'})
          } catch (putBack) {
            throw new HaError(`${error.message}\nand putting ${labels[from]} back failed too: ${(putBack as Error).message}`, {actions: [`ha failover --abort to try again, or ${resumeCommand}`], exitCode: ExitCode.stoppedMidway})
          }

          throw new HaError(`${failed.id}: ${error.message.replace(/^[\w-]+: /, '')}\nThe failover was aborted: ${labels[from]} has its storage, service IPs and services back, as before.`, {
            actions: error.actions.filter((a) => !a.includes('ha failover')),
            details: error.details,
            exitCode: error.exitCode,
          })
        }

        throw asStop(error, failed)
      }

      await journal.append({at: new Date().toISOString(), status: 'done', type: 'end'})
    }
  } finally {
    await journal.flushMirror()
    stopRemembering()
    await nodes.closeAll()
  }

  const wall = Date.now() - started
  return {
    aborted,
    epoch: Number(journal.stepState('acquire-storage').data.epoch ?? 0),
    from,
    ha_ms: wall - waitingMs,
    journal: journal.path,
    ran,
    resumed: Boolean(prepared.resume),
    run_id: runId,
    steps: results,
    to,
    waiting_ms: waitingMs,
    wall_ms: wall,
  }
}

async function carryOut(nodes: FailoverNodes, step: Step, action: Action, opts: ActOptions): Promise<RunResult> {
  const none: RunResult = {code: 0, stderr: Buffer.alloc(0), stdout: Buffer.alloc(0)}
  if (opts.inProcess) {
    await opts.inProcess()
    return none
  }

  if (action.on === 'here') throw new Error(`step ${step.id}: an action here must be carried out in-process`)
  const host = await nodes.get(action.on)
  if ('edit' in action) {
    // The step read the file to compute the new text, after the last action: its mode is known.
    const seen = await observedStat(host, action.edit)
    const st = seen === 'unknown' ? await host.stat(action.edit) : seen
    await host.writeFile(action.edit, opts.content ?? '', st ? st.mode & 0o7777 : 0o644)
    return none
  }

  const result = await host.run(action.argv, {stdin: opts.stdin, timeoutMs: opts.timeoutMs})
  const allowed = opts.allow ?? [0]
  if (!allowed.includes(result.code)) throw new HostCommandError(host, action.argv, `exited ${result.code}`, result.stderr)
  return result
}

/** A lost connection or an interruption is a stop at this step's boundary; other failures keep their code and say how to go on. */
function asStop(error: unknown, step: Step): Error {
  if (error instanceof FailoverStopped) return error
  if (error instanceof InterruptedError) return new FailoverStopped(`interrupted during ${step.id}; the journal has every step so far`)
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

/**
 * After the restore the node taking over presents the active node's host keys (they came from the
 * backup). Each is recorded for that node's address in known_hosts as ssh would append it, and
 * from now on a connection must present exactly one of them (FailoverNodes.expectHostKeys).
 */
async function recordHostKeys(config: Config, node: NodeName, keys: string[], nodes: FailoverNodes, enforce: boolean): Promise<void> {
  const ssh = config.nodes[node].ssh
  const blobs = keys.map((k) => Buffer.from(k.split(' ')[1] ?? '', 'base64'))
  if (enforce) nodes.expectHostKeys(node, blobs.map((b) => fingerprint(b)))
  if (!ssh) return
  const {readKnownHosts, hostKeyName, entriesForName} = await import('../hosts/known-hosts.js')
  const known = await readKnownHosts(ssh.known_hosts)
  const listed = entriesForName(known, hostKeyName(ssh.host, ssh.port))
  for (const blob of blobs) {
    if (!listed.some((e) => e.marker === undefined && e.key.blob.equals(blob))) await appendKnownHost(ssh.known_hosts, ssh.host, ssh.port, blob)
  }
}


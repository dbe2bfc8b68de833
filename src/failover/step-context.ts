import picomatch from 'picomatch'

import type {Config, NodeName} from '../config/schema.js'
import {HostCommandError, type RunResult} from '../hosts/host.js'
import {appendKnownHost} from '../hosts/known-hosts-append.js'
import {fingerprint} from '../hosts/ssh-key-blob.js'
import type {FailoverNodes} from '../pair/nodes.js'
import {forgetObservations, observedStat} from '../steps/observe.js'
import {type Action, type ActOptions, describeAction, sameAction, type Step, type StepContext} from '../steps/step.js'
import type {Journal} from './journal.js'

/** What the step context reads and moves on of the run in progress (FailoverRunner holds it). */
export interface RunState {
  readonly config: Config
  readonly from: NodeName
  readonly to: NodeName
  readonly runId: string
  readonly nodes: FailoverNodes
  readonly journal: Journal
  readonly labels: Record<NodeName, string>
  readonly options: {onProgress?: (message: string) => void; signal?: AbortSignal}
  /** Every action run, in order (as the plan prints them). */
  readonly ran: Array<{step: string; action: string}>
  /** Tests only: the step in which the process kills itself after the first action (HA_FAILOVER_TEST_KILL_IN). */
  readonly killIn?: string
  /** The step running now: set by the loop before each step, read by act and remember. */
  current?: Step
  /** Time spent waiting on the world so far (reboots, service start/stop, ctx.waiting). */
  waitingMs: number
  /** Service IPs this process heard silent on the wire, each with how many actions had run then (ctx.noteSilent). */
  readonly silentOnWire: Map<string, number>
}

/** The StepContext the steps see: the run's nodes and journal, and actions only as planned. */
export function stepContext(run: RunState): StepContext {
  const {config, from, journal, nodes, options, runId, to} = run
  const ctx: StepContext = {
    act: (action, opts = {}) => act(run, ctx, action, opts),
    config,
    connectAnew: (node) => nodes.fresh(node),
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
    heardSilent: (address) => run.silentOnWire.get(address) === run.ran.length,
    host: (node) => nodes.get(node),
    progress: (m) => options.onProgress?.(m),
    reachable: (node) => nodes.reachable(node),
    noteSilent(addresses) {
      for (const a of addresses) run.silentOnWire.set(a, run.ran.length)
    },
    remember: (data) => remember(run, data),
    runId,
    signal: options.signal,
    to,
    async waiting(work) {
      const t0 = Date.now()
      try {
        return await work()
      } finally {
        run.waitingMs += Date.now() - t0
      }
    },
  }
  return ctx
}

/** ctx.act: refuses an action the step does not plan, journals it (fsync'd) before carrying it out, counts the world's time. */
async function act(run: RunState, ctx: StepContext, action: Action, opts: ActOptions): Promise<RunResult> {
  const {config, journal, labels, nodes, to} = run
  const step = run.current!
  if (!step.actions(ctx).some((a) => sameAction(a, action))) {
    throw new Error(`step ${step.id} tried an action its plan does not list: ${describeAction(action, labels)}`)
  }

  const target = editTarget(step, action, opts)
  const shown = describeAction(target ? {...action, edit: target} : action, labels)
  await journal.append({action: shown, at: new Date().toISOString(), on: action.on, step: step.id, type: 'action'})
  run.ran.push({action: shown, step: step.id})
  // A reboot command returns when the node goes down: that is the world's time, as services are.
  const waits = 'argv' in action && action.on !== 'here' && [config.services.start, config.services.stop, config.nodes[action.on].reboot_command].some((a) => a && sameAction({argv: a, on: action.on}, action))
  // The storage's copy of the journal is complete before the node holding it reboots.
  if (action.on === to && 'argv' in action && sameAction({argv: config.nodes[to].reboot_command, on: to}, action)) await journal.flushMirror()
  const t0 = Date.now()
  let result: RunResult
  try {
    result = await carryOut(nodes, step, action, opts)
  } finally {
    forgetObservations(target)
  }

  if (waits) run.waitingMs += Date.now() - t0
  // Tests only: die the hard way in the middle of a step, after its first action.
  if (run.killIn === step.id) process.kill(process.pid, 'SIGKILL')
  return result
}

/** The file an edit writes: the planned path, or the step's file where the plan names a glob (held to it). */
function editTarget(step: Step, action: Action, opts: ActOptions): string | undefined {
  if (!('edit' in action)) return undefined
  const path = opts.path ?? action.edit
  if (path !== action.edit && !(/[*?[]/.test(action.edit) && picomatch(action.edit)(path))) {
    throw new Error(`step ${step.id} tried to write ${path}, which its planned edit of ${action.edit} does not cover`)
  }

  return path
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
    // The step read the file to compute the new text, after the last action: its stat is known.
    // The new file keeps the old one's mode and owner (a NetworkManager keyfile must stay root's
    // 0600), and its SELinux context where the node has restorecon.
    const path = opts.path ?? action.edit
    const seen = await observedStat(host, path)
    const st = seen === 'unknown' ? await host.stat(path) : seen
    await host.writeFile(path, opts.content ?? '', st ? st.mode & 0o7777 : 0o644, {owner: st ? {gid: st.gid, uid: st.uid} : undefined, relabel: true})
    return none
  }

  const result = await host.run(action.argv, {stdin: opts.stdin, timeoutMs: opts.timeoutMs})
  const allowed = opts.allow ?? [0]
  if (!allowed.includes(result.code)) throw new HostCommandError(host, action.argv, `exited ${result.code}`, result.stderr)
  return result
}

/** ctx.remember: the step's fact journalled; the host keys restore-takeover learnt are recorded (and then enforced) for the node taking over. */
async function remember(run: RunState, data: Record<string, unknown>): Promise<void> {
  const {config, journal, nodes, to} = run
  await journal.append({at: new Date().toISOString(), data, step: run.current!.id, type: 'data'})
  if (run.current?.id === 'restore-takeover' && Array.isArray(data.expect_keys)) await recordHostKeys(config, to, data.expect_keys as string[], nodes, false)
  if (run.current?.id === 'restore-takeover' && Array.isArray(data.host_keys)) await recordHostKeys(config, to, data.host_keys as string[], nodes, true)
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

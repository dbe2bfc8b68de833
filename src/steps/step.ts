import type {Config, NodeName} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import type {Host, RunResult} from '../hosts/host.js'

/**
 * One step of the failover runbook (the step contract in ARCHITECTURE.md). The same objects
 * print the plan (`ha failover --plan`) and run: a step may only execute an action it lists in
 * `actions`, and the runner refuses any other, so what runs is always what was planned.
 *
 * - post: does the step's outcome already hold? Then it is skipped (what makes --resume safe).
 * - pre: may it run now? A string says why not (the failover stops there).
 * - run: do it, through ctx.act only.
 */
export type Where = NodeName | 'here'

/**
 * An argv run on a node, or a file ha writes there (an edit of a boot configuration). An edit may
 * name a glob (/etc/netplan/*.yaml) where the file's contents decide which file it is: the step
 * then names the file it writes (ActOptions.path), which the runner holds to the glob.
 */
export type Action = {argv: string[]; on: Where} | {edit: string; on: Where; what: string}

export interface StepContext {
  config: Config
  /** The active node, handing over. */
  from: NodeName
  /** The standby, taking over. */
  to: NodeName
  runId: string
  /** The connected host, or throws NodeUnreachable. */
  host(node: NodeName): Promise<Host>
  /** Is the node answering ssh right now? (connects if it was not connected). */
  reachable(node: NodeName): Promise<boolean>
  /**
   * A new connection of the caller's own (the caller closes it), not the run's; an active node
   * confirmed fenced and found silent in this run is not waited on again (its finding is thrown).
   */
  connectAnew(node: NodeName): Promise<Host>
  /** Forget a node's connection (it reboots). */
  drop(node: NodeName): Promise<void>
  /** Runs one of the step's planned actions and journals it; an argv that exits non-zero throws unless allowed. */
  act(action: Action, options?: ActOptions): Promise<RunResult>
  /** Time spent waiting on the world (a reboot, a service start, a sleep), not counted as ha's own. */
  waiting<T>(work: () => Promise<T>): Promise<T>
  /** What this step, or an earlier one, journalled (merged across the run, resumes included). */
  data(step: string): Record<string, unknown>
  /** Journal a fact for this step (kept across --resume). */
  remember(data: Record<string, unknown>): Promise<void>
  /**
   * The wire, as this process heard it from the node taking over (arping -D): `noteSilent` after a
   * step heard every address given silent; `heardSilent` is true while no action has been carried
   * out since, so the next step asking the same question may take that answer.
   */
  noteSilent(addresses: string[]): void
  heardSilent(address: string): boolean
  /** The operator confirmed the active node is fenced (flag or typed). */
  fenced(): {by: string; how: string} | undefined
  progress(message: string): void
  signal?: AbortSignal
}

export interface ActOptions {
  /** Exit statuses that are not failures (default: 0 only). */
  allow?: number[]
  /** For an edit: the file's new content. */
  content?: string
  /** For an edit planned as a glob: the file written, which the glob must match. */
  path?: string
  /** The action is carried out by ha itself (ha check, an epoch write, an http probe). */
  inProcess?: () => Promise<void>
  stdin?: string
  timeoutMs?: number
}

export interface Step {
  id: string
  title: string
  /** The node it acts on ("here": where ha failover runs). */
  on(ctx: Pick<StepContext, 'from' | 'to'>): Where
  actions(ctx: Pick<StepContext, 'config' | 'from' | 'to'>): Action[]
  post(ctx: StepContext): Promise<boolean>
  pre?(ctx: StepContext): Promise<string | undefined>
  run(ctx: StepContext): Promise<void>
}

/** One step as the plan prints it (ha failover --plan, ha rejoin --plan): its actions described, its node named. */
export interface PlannedStep {
  id: string
  title: string
  on: string
  actions: string[]
}

export function describeAction(action: Action, names: Record<NodeName, string>): string {
  const where = action.on === 'here' ? 'here' : names[action.on]
  if ('edit' in action) return `${where}: edit ${action.edit}: ${action.what}`
  return `${where}$ ${action.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`
}

export function sameAction(a: Action, b: Action): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/**
 * A step that stopped for safety before the storage moved (busy storage, a service IP that will
 * not go): the runner then puts the active node back and the run is over. `actions` say what to do
 * while the run still stands (--resume, --abort); `afterPutBack` what to do once the node is back,
 * which is a new `ha failover`, never --resume.
 */
export class BeforeMoveError extends HaError {
  readonly afterPutBack: string[]

  constructor(message: string, options: {actions: string[]; afterPutBack: string[]; details?: Record<string, unknown>}) {
    super(message, {actions: options.actions, details: options.details})
    this.afterPutBack = options.afterPutBack
  }
}

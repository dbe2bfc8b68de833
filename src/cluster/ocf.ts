/**
 * The OCF resource agent contract as Pacemaker reads it: the exit codes (what each makes the
 * cluster do) and the actions ha's agent answers. ocf:ha:controller (the shell script ocf/controller,
 * installed in /usr/lib/ocf/resource.d/ha/) hands every action to `ha cluster agent`.
 */
export const OcfExit = {
  success: 0,
  /** Something failed here: Pacemaker recovers (stop, then start again here or elsewhere). */
  generic: 1,
  /** The agent was called wrongly (an unknown parameter value, no action). */
  args: 2,
  unimplemented: 3,
  perm: 4,
  /** Cannot run on this node (a program missing, a version or storage that does not fit): Pacemaker bans the resource from this node. */
  installed: 5,
  /** The configuration is wrong: Pacemaker stops the resource everywhere until an admin fixes it. */
  configured: 6,
  /** Cleanly stopped (what monitor says of a node that does not run the service). */
  notRunning: 7,
} as const

export type OcfExitCode = (typeof OcfExit)[keyof typeof OcfExit]

export const agentActions = ['start', 'stop', 'monitor', 'validate-all', 'meta-data'] as const
export type AgentAction = (typeof agentActions)[number]

/** A failure that says which OCF exit Pacemaker must see. */
export class OcfError extends Error {
  constructor(
    readonly code: OcfExitCode,
    message: string,
  ) {
    super(message)
  }
}

/** What Pacemaker passes in the environment (OCF_RESKEY_* are the resource's parameters). */
export interface AgentEnvironment {
  /** OCF_CHECK_LEVEL: 0 the service's status; 10 it answers; 20 the data directory is writable. */
  checkLevel: number
  /** The operation's timeout (OCF_RESKEY_CRM_meta_timeout, ms): ha finishes within it. */
  timeoutMs: number
  /** A probe (a monitor with interval 0): is it running here at all? */
  probe: boolean
}

export function agentEnvironment(env: NodeJS.ProcessEnv, action: AgentAction): AgentEnvironment {
  const level = Number(env.OCF_CHECK_LEVEL ?? 0)
  const timeout = Number(env.OCF_RESKEY_CRM_meta_timeout)
  const defaults: Record<AgentAction, number> = {'meta-data': 5000, 'validate-all': 30_000, monitor: 60_000, start: 600_000, stop: 600_000}
  return {
    checkLevel: Number.isInteger(level) && level >= 0 ? level : 0,
    probe: action === 'monitor' && (env.OCF_RESKEY_CRM_meta_interval ?? '0') === '0',
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : defaults[action],
  }
}

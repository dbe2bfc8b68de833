import {HaError} from '../core/errors.js'
import {underCluster} from './agent-context.js'
import {agentSetup, type AgentOptions, validateHere} from './agent-setup.js'
import {agentMetaData} from './meta-data.js'
import {type AgentAction, agentActions, agentEnvironment, OcfError, OcfExit, type OcfExitCode} from './ocf.js'

/**
 * `ha cluster agent ACTION`: ocf:ha:controller's every action (the shell script hands over to it).
 * Pacemaker reads only the exit code, so every outcome, an unexpected error included, ends in the
 * OCF code that makes the cluster do the right thing; the why goes to stderr (Pacemaker's log).
 */
export async function runAgent(action: string, options: AgentOptions): Promise<OcfExitCode> {
  if (!(agentActions as readonly string[]).includes(action)) {
    options.log(`ocf:ha:controller: ${action ? `"${action}" is not an action of this agent` : 'no action given'} (${agentActions.join(', ')})`)
    return action ? OcfExit.unimplemented : OcfExit.args
  }

  if (action === 'meta-data') {
    process.stdout.write(agentMetaData())
    return OcfExit.success
  }

  const env = agentEnvironment(options.env, action as AgentAction)
  let group: string | undefined
  try {
    const setup = await agentSetup(options, env)
    group = setup.config.cluster.group
    switch (action as Exclude<AgentAction, 'meta-data'>) {
      case 'validate-all': {
        await validateHere(setup)
        return OcfExit.success
      }

      case 'monitor': {
        const {monitor} = await import('./agent-monitor.js')
        return await monitor(setup)
      }

      case 'start': {
        await validateHere(setup)
        const {start} = await import('./agent-start.js')
        return await start(setup)
      }

      case 'stop': {
        const {stop} = await import('./agent-monitor.js')
        return await stop(setup)
      }
    }
  } catch (error) {
    return failure(error, options.log, group)
  }
}

function failure(error: unknown, log: (line: string) => void, group?: string): OcfExitCode {
  if (error instanceof OcfError) {
    log(`ocf:ha:controller: ${error.message}`)
    return error.code
  }

  const message = error instanceof Error ? error.message : String(error)
  const actions = error instanceof HaError ? error.actions.map((a) => underCluster(a, group)) : []
  log(`ocf:ha:controller: ${message}${actions.length > 0 ? ` (${actions.join('; ')})` : ''}`)
  return OcfExit.generic
}

import type {Config} from '../config/schema.js'
import {ConfigError, InterruptedError} from '../core/errors.js'
import {LocalHost} from '../hosts/local-host.js'
import {askNode} from '../pacemaker/view.js'

/**
 * What ha refuses to do by hand while Pacemaker manages the pair (cluster.manager: pacemaker):
 * Pacemaker decides where the service runs and moves it with ha's resource agent; a restore, a
 * rejoin or a manual failover step run beside it would fight the cluster (it would stop, start or
 * fence what ha just moved). The refusal changes nothing and says what to run instead.
 *
 * ha's own resource agent (ocf:ha:controller) runs ha restore as part of its start: it sets
 * HA_OCF=1 in the environment of what it runs, and only then is the restore allowed.
 */
export const ocfEnvName = 'HA_OCF'

export function underPacemaker(config: Config): boolean {
  return config.cluster.manager === 'pacemaker'
}

/** ha runs as (or under) the resource agent: HA_OCF=1. */
export function fromResourceAgent(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[ocfEnvName] === '1'
}

/** A command ha refuses under Pacemaker; exit 2 like any configuration refusal. */
export class ClusterManagedError extends ConfigError {}

type Refused = 'ha failover --abort' | 'ha failover --resume' | 'ha rejoin' | 'ha restore'

function why(what: Refused): string {
  if (what === 'ha restore') return 'Pacemaker starts and stops the service (ha\'s resource agent restores the saved state as part of its start): a restore by hand would change a node under the cluster\'s feet'
  if (what === 'ha rejoin') return 'a node rejoins by joining the cluster: it keeps its own identity under Pacemaker, so there is nothing to give back, and the cluster, not ha, decides that it may run the service'
  return 'the manual failover\'s steps (storage, service IPs, services) would fight the cluster, which moves them itself'
}

function instead(config: Config, what: Refused): string[] {
  const {group} = config.cluster
  const move = `to move the service to the other node: ha failover (it asks Pacemaker: crm_resource --move --resource ${group} --node NODE, then clears the move)`
  if (what === 'ha restore') {
    return [
      move,
      `to restart it where it runs: crm_resource --restart --resource ${group} (pcs resource restart ${group})`,
      'to look at a backup without changing anything: ha restore --dry-run',
      'to work on the pair by hand: crm_attribute --type crm_config --name maintenance-mode --update true first (ha restore then runs), --update false after',
    ]
  }

  if (what === 'ha rejoin') {
    return [
      'start the cluster on the repaired node: pcs cluster start NODE (or systemctl start corosync pacemaker on it)',
      `forget its old failures: crm_resource --cleanup --resource ${group} --node NODE (pcs resource cleanup ${group})`,
      'take it out of standby if it is: crm_attribute --node NODE --name standby --update off (pcs node unstandby NODE)',
      'then: ha check',
    ]
  }

  return [move, 'to let go of the manual run this machine\'s journal still holds: ha failover --forget RUN (ha status names it)']
}

/**
 * Throws ClusterManagedError when Pacemaker manages the pair: the config file and its
 * cluster.manager named, the reason, what to run instead. Nothing was touched.
 */
export function refuseUnderPacemaker(config: Config, path: string, what: Refused): void {
  if (!underPacemaker(config)) return
  throw new ClusterManagedError(`${what} is refused: ${path} has cluster.manager: pacemaker, and ${why(what)}`, {
    actions: instead(config, what),
    details: {cluster_manager: 'pacemaker', config: path, refused: what},
  })
}

/**
 * ha restore under Pacemaker: refused, unless ha's resource agent runs it (HA_OCF=1) or the
 * cluster is in maintenance mode (an admin took the pair out of the cluster's hands: crm_mon on
 * this node says so); then `onWarning` hears that it runs by hand. crm_mon not answering is a
 * refusal, with its reason.
 */
export async function refuseRestoreUnderPacemaker(config: Config, path: string, onWarning: (message: string) => void, signal?: AbortSignal): Promise<void> {
  if (!underPacemaker(config) || fromResourceAgent()) return
  let why = ''
  try {
    const view = await askNode(new LocalHost('this node', '/', 20_000), signal)
    if (view.maintenance_mode) {
      onWarning('the cluster is in maintenance mode (crm_mon on this node): ha restore runs by hand; take it out again afterwards: crm_attribute --type crm_config --name maintenance-mode --update false')
      return
    }
  } catch (error) {
    if (error instanceof InterruptedError) throw error
    why = (error as Error).message.split('\n')[0]
  }

  try {
    refuseUnderPacemaker(config, path, 'ha restore')
  } catch (error) {
    if (why && error instanceof ClusterManagedError) error.details!.crm_mon = why
    throw error
  }
}

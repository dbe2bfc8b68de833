import type {Config} from '../config/schema.js'
import {ConfigError} from '../core/errors.js'

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
    return [move, `to restart it where it runs: crm_resource --restart --resource ${group} (pcs resource restart ${group})`, 'to look at a backup without changing anything: ha restore --dry-run']
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

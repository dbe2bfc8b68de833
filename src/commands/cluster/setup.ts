import {HaCommand} from '../../cli/base-command.js'
import {Flags} from '../../cli/oclif.js'
import {ExitCode} from '../../core/errors.js'

export default class ClusterSetup extends HaCommand<typeof ClusterSetup> {
  static description = `Prints the Pacemaker configuration ha.yaml asks for (cluster.manager: pacemaker): one group, cluster.group, starting in order the storage (the stock Filesystem or ZFS agent), one IPaddr2 per service IP and ha's own resource (ocf:ha:controller, two monitors), with the restart-then-move policy (migration-threshold, failure-timeout) and stickiness on it; the fence devices of cluster.fencing; and the cluster properties (stonith-enabled, no-quorum-policy, priority-fencing-delay). Once as CIB XML, once as pcs commands. With --apply, run as root on a cluster node, it puts that into the live CIB through cibadmin: made in a copy first, judged by crm_verify, then sent as one patch; a copy crm_verify rejects changes nothing, and a second run finds nothing to change. Refuses a config whose cluster.manager is not pacemaker, or whose storage the cluster cannot move (storage.kind manual or none); exit 2. See docs/cluster.md.`

  static examples = [
    '<%= config.bin %> cluster setup',
    '<%= config.bin %> cluster setup --apply',
    '<%= config.bin %> cluster setup --node-config /etc/ha/ha.yaml --json',
  ]

  static flags = {
    apply: Flags.boolean({description: "put it into this node's CIB (cibadmin), as root"}),
    'node-config': Flags.string({description: "ha.yaml's path on the nodes (default: the file read)"}),
  }

  static summary = 'Print (or apply) the Pacemaker resources for ha.yaml'

  async run(): Promise<void> {
    const {flags} = await this.parse(ClusterSetup)
    const loaded = await this.loadConfig(flags)
    const {clusterSetup} = await import('../../cluster/setup.js')
    const {renderSetup} = await import('../../cluster/render.js')
    const {LocalHost} = await import('../../hosts/local-host.js')
    const host = new LocalHost('this node', '/', 60_000)
    const result = await clusterSetup(loaded, {apply: flags.apply, host, nodeConfig: flags['node-config'], signal: this.abort.signal}, (message) => this.reporter.warn(message))
    this.finish(result, ExitCode.ok, renderSetup)
  }
}

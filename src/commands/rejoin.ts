import {HaCommand} from '../cli/base-command.js'
import {Args, Flags} from '../cli/oclif.js'
import {requireNeeds} from '../config/needs.js'
import {ConfigError, ExitCode} from '../core/errors.js'

export default class Rejoin extends HaCommand<typeof Rejoin> {
  static needsRoot = "it rewrites this node's identity and boot configuration"

  static args = {
    node: Args.string({description: 'the node to make the standby: primary or secondary (or its hostname)', required: true}),
  }

  static description = `Makes a repaired node a proper standby of the active node (the epoch says which that is), and proves each point: the same product version, no service IP at runtime or in its boot configuration, the product's services stopped, the shared storage not attached and not in its fstab, its own standby identity back (hostname, /etc/hosts, ssh host keys, network configuration: the files its takeover kept in /var/lib/ha/standby-identity on its own disk, given back, the node rebooted into them, its host key recorded in known_hosts and no other accepted). A node that came back after a takeover with the service IP still in its network configuration is exactly what this repairs (ha check fails on it until then). Afterwards ha failover can fail back to it.

Refused under cluster.manager: pacemaker: there a node keeps its identity and rejoins by joining the cluster (pcs cluster start; docs/cluster-guided.md).`

  static examples = ['<%= config.bin %> rejoin primary', '<%= config.bin %> rejoin secondary --json', '<%= config.bin %> rejoin secondary --plan']

  static flags = {
    'kept-identity': Flags.string({
      description: 'what ha rejoin runs on NODE itself over ssh (not for hand use): give back the identity its takeover kept in /var/lib/ha/standby-identity, or forget it once proven',
      options: ['give-back', 'forget'],
    }),
    plan: Flags.boolean({description: 'print the rejoin runbook (every step and the exact commands it runs) and change nothing; reaches no node'}),
  }

  static summary = 'Make a repaired node a proper standby, proving each point'

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Rejoin)
    const {config, path} = await this.loadConfig(flags)
    const {refuseUnderPacemaker} = await import('../cluster/refuse.js')
    refuseUnderPacemaker(config, path, 'ha rejoin')
    const node = (['primary', 'secondary'] as const).find((n) => n === args.node || config.nodes[n].hostname === args.node)
    if (!node) throw new ConfigError(`ha rejoin ${args.node}: not a node (primary, secondary) nor a node's hostname in the config`, {actions: ['ha rejoin primary, or ha rejoin secondary']})
    if (flags['kept-identity']) {
      const {keptIdentityHere} = await import('../restore/standby-identity-here.js')
      const result = await keptIdentityHere(config, node, flags['kept-identity'] as 'forget' | 'give-back')
      return this.finish(result, ExitCode.ok, () => ('changed' in result ? `gave back ${result.changed.length} identity files (${result.hostname})` : `forgot the kept identity ${result.dir}`))
    }

    // It stops the product on the node and proves it stopped: without these there is no plan to print.
    requireNeeds(config, path, 'ha rejoin')
    const {nodeLabels, renderPlan} = await import('../failover/plan.js')
    if (flags.plan) {
      const {planRejoin} = await import('../steps/rejoin.js')
      const active = node === 'primary' ? 'secondary' : 'primary'
      const plan = planRejoin(config, node, active, nodeLabels(config))
      return this.finish({from: node, plan, to: active}, ExitCode.ok, () => `Rejoin ${nodeLabels(config)[node]} as the standby of ${nodeLabels(config)[active]}\n\n${renderPlan(plan)}`)
    }

    const {prepareRejoin} = await import('../failover/prepare.js')
    const {runFailover} = await import('../failover/runner.js')
    const prepared = await prepareRejoin(config, node, this.abort.signal)
    const labels = nodeLabels(config)
    const result = await runFailover(prepared, {
      config,
      onEvent: (e) => this.reporter.event(e as unknown as Record<string, unknown>, `${{done: '✓', failed: '✗', skipped: '–', started: '…', stopped: '■'}[e.event]} ${e.step}${e.event === 'started' ? ` ${e.title}` : ''}${e.error ? `: ${e.error}` : ''}`),
      onProgress: (m) => this.reporter.info(`  ${m}`),
      onWarning: (m) => this.reporter.warn(m),
      rejoin: true,
      signal: this.abort.signal,
    })
    return this.finish(result, ExitCode.ok, () => `${labels[node]} is a proper standby of ${labels[prepared.to]}: its own identity, no service IP, services stopped, storage detached (runtime and boot), host key as recorded.`)
  }
}

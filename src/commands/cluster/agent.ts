import {Args} from '../../cli/oclif.js'

import {HaCommand} from '../../cli/base-command.js'
import {clusterAgent} from '../../cli/direct.js'
import {nodeFlag} from '../../cli/flags.js'

export default class ClusterAgent extends HaCommand<typeof ClusterAgent> {
  static args = {
    action: Args.string({description: 'start, stop, monitor, validate-all or meta-data', required: false}),
  }

  static description = `What ocf:ha:controller, ha's OCF resource agent, runs: Pacemaker calls the agent (/usr/lib/ocf/resource.d/ha/controller), which hands the action here. Exit codes are OCF's, not ha's: 0 done or running, 1 failed here (Pacemaker recovers), 2 bad arguments, 3 no such action, 5 cannot run on this node (banned from it: a product missing, a version differing from the other node's, a storage older than this node has seen), 6 the configuration is wrong (stopped everywhere), 7 stopped. OCF_CHECK_LEVEL picks the monitor's depth: 0 services.status, 10 the service answers (failover.verify), 20 the data directory takes a write. docs/cluster.md.`

  static examples = ['OCF_CHECK_LEVEL=10 <%= config.bin %> cluster agent monitor', '<%= config.bin %> cluster agent meta-data']

  static flags = {node: nodeFlag}

  // Pacemaker's interface, not an admin's: OCF exit codes and no --json envelope, so it stays out
  // of ha's command list and JSON contract. docs/cluster.md documents it.
  static hidden = true

  static summary = "Run one action of ha's Pacemaker resource agent (OCF exit codes)"

  async run(): Promise<void> {
    const {args, flags} = await this.parse(ClusterAgent)
    // The body is shared with the run without oclif (cli/direct.ts), which is how Pacemaker's
    // calls usually run.
    await clusterAgent({args: args.action === undefined ? [] : [args.action], flags, reporter: this.reporter, signal: this.abort.signal})
  }
}

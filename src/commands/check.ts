import {renderReport} from '../check/render.js'
import type {CheckReport} from '../check/types.js'
import {HaCommand} from '../cli/base-command.js'
import {Flags} from '../cli/oclif.js'
import type {Colors} from '../core/colors.js'

export default class Check extends HaCommand<typeof Check> {
  static description = `Checks both nodes over SSH (one round trip each, in parallel) and reports each check as PASS, WARN or FAIL with its evidence: reachability and host key, which node is active by the epoch (the roles), product version parity, service IPs held by the active node only (ip addr and arping -D), where the storage is attached (and that it is storage.device), backup freshness, free space wherever a restore would write, no unfinished restore, and clock skew. Each warning or failure shows its fix under its row.

Under cluster.manager: pacemaker, also the cluster's rows (crm_mon in the same batch): quorum, both nodes online, the controller resource started exactly once, failed actions (a warning), fencing configured, and whether ha's epoch names the node where Pacemaker runs the controller; in --json the view is result.cluster (docs/cluster-guided.md).

Exit 0 when nothing failed (warnings alone are fine unless --strict), 3 when something failed.`

  static examples = [
    '<%= config.bin %> check',
    '<%= config.bin %> check --strict --quiet   # from cron: silent unless something is wrong',
    '<%= config.bin %> check --json | jq \'.result.checks[] | select(.status != "pass")\'',
  ]

  static flags = {
    strict: Flags.boolean({description: 'treat warnings as failures (exit 3)'}),
  }

  static summary = 'Say whether a failover would be safe right now'

  async run(): Promise<CheckReport> {
    const {flags} = await this.parse(Check)
    const {config} = await this.loadConfig(flags)
    const {runCheck} = await import('../check/check.js')
    // Both nodes are asked at once: one line says what each still waits for, and for how long.
    const line = this.reporter.progress()
    const waiting = new Map<string, {since: number; what: string}>()
    const render = () => [...waiting.values()].map((w) => `${w.what} ${Math.floor((Date.now() - w.since) / 1000)}s`).join('  ')
    const onWait = (node: string, what?: string) => {
      if (what) waiting.set(node, {since: Date.now(), what})
      else waiting.delete(node)
      if (waiting.size > 0) line.tick(render)
      else line.done()
    }

    const {exitCode, report} = await runCheck(config, {onWait, onWarning: (m) => this.reporter.warn(m), signal: this.abort.signal, strict: flags.strict})
    const failed = report.checks.filter((c) => c.status === 'fail')
    const quietLine = failed.length > 0 ? `check failed: ${failed.map((c) => (c.node ? `${c.id} (${c.node})` : c.id)).join(', ')}` : undefined
    return this.finish(report, exitCode, renderReport as (result: unknown, color: Colors) => string, quietLine)
  }
}

import {Flags} from '@oclif/core'
import type {ChalkInstance} from 'chalk'

import {HaCommand} from '../cli/base-command.js'
import type {CheckReport} from '../check/types.js'

export default class Check extends HaCommand<typeof Check> {
  static description = `Checks both nodes over SSH (one round trip each, in parallel) and reports each check as PASS, WARN or FAIL with its evidence: reachability and host key, which node is active by the epoch (the roles), product version parity, service IPs held by the active node only (ip addr and arping -D), where the storage is attached (and that it is storage.device), backup freshness, free space wherever a restore would write, no unfinished restore, and clock skew. Each warning or failure shows its fix under its row.

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
    return this.finish(report, exitCode, renderReport as (result: unknown, color: ChalkInstance) => string, quietLine)
  }
}

export function renderReport(report: CheckReport, color: ChalkInstance): string {
  const paint = {fail: color.red.bold, pass: color.green, warn: color.yellow}
  const rows = report.checks.map((c) => [c.status.toUpperCase(), c.title, c.node ?? '', c.summary, c.status] as const)
  const width = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), ['STATUS', 'CHECK', 'NODE'][i].length))
  const line = (cells: readonly string[], status?: keyof typeof paint) => {
    const first = cells[0].padEnd(width[0])
    return [status ? paint[status](first) : first, cells[1].padEnd(width[1]), cells[2].padEnd(width[2]), cells[3]].join('  ')
  }

  // Each problem's fix goes right under its row, in the evidence column.
  const indent = ' '.repeat(width[0] + width[1] + width[2] + 6)
  // Who is active decides what the rows call right: said first, as the epoch has it.
  const {roles} = report
  const source = {config: 'no takeover yet', node: 'as noted on the nodes', storage: 'from the shared storage'}
  const header = roles ? `Roles: ${roles.active} active, ${roles.standby} standby (epoch ${roles.epoch}, ${source[roles.source]})` : 'Roles: cannot be decided (see the roles row)'
  const out = [header, '', color.dim(line(['STATUS', 'CHECK', 'NODE', 'EVIDENCE']))]
  for (const [i, r] of rows.entries()) {
    out.push(line(r, r[4]))
    for (const action of report.checks[i].actions ?? []) out.push(`${indent}${color.dim('→')} ${action}`)
  }

  const {fail, pass, warn} = report.counts
  const verdict = fail > 0 ? paint.fail('NOT safe to fail over') : warn > 0 ? paint.warn('safe, with warnings') : paint.pass('safe to fail over')
  out.push('', `${pass} passed, ${warn} warned, ${fail} failed${report.strict ? ' (--strict)' : ''}: ${verdict}`)
  return out.join('\n')
}

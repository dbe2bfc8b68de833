import type {Colors} from '../core/colors.js'
import {clusterLine} from '../pacemaker/render.js'
import type {CheckReport} from './types.js'

/** ha check's table as a terminal shows it: the roles first, each problem's fix under its row, the verdict last. */
export function renderReport(report: CheckReport, color: Colors): string {
  const paint = {fail: (text: string) => color.red(color.bold(text)), pass: color.green, warn: color.yellow}
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
  const moves = report.mode.failover === 'service' ? 'a failover moves the service only; each node keeps its own name and keys (failover.mode: service)' : 'a failover moves the service and the active node\'s identity (failover.mode: identity)'
  const decides = report.mode.cluster === 'pacemaker' ? '; Pacemaker decides when (cluster.manager: pacemaker)' : ''
  const cluster = report.cluster ? [clusterLine(report.cluster)] : []
  const out = [header, `Mode: ${moves}${decides}`, ...cluster, '', color.dim(line(['STATUS', 'CHECK', 'NODE', 'EVIDENCE']))]
  for (const [i, r] of rows.entries()) {
    out.push(line(r, r[4]))
    for (const action of report.checks[i].actions ?? []) out.push(`${indent}${color.dim('→')} ${action}`)
  }

  const {fail, pass, warn} = report.counts
  const verdict = fail > 0 ? paint.fail('NOT safe to fail over') : warn > 0 ? paint.warn('safe, with warnings') : paint.pass('safe to fail over')
  out.push('', `${pass} passed, ${warn} warned, ${fail} failed${report.strict ? ' (--strict)' : ''}: ${verdict}`)
  return out.join('\n')
}

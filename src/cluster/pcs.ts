import type {ClusterPlan, Op, Primitive} from './cib.js'

/**
 * The same plan as pcs commands, for the admin who configures the cluster with pcs: fence devices
 * first (with stonith-enabled=true and none, pcs and Pacemaker refuse to start anything), then the
 * properties, the group's members in order, the group's policy and the constraints. Each command
 * one line, every word shell-quoted where it needs to be. Nothing here runs them.
 */

/** A word as a POSIX shell reads it back: bare when it is safe, else in single quotes. */
export function shellQuote(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word
  return `'${word.replaceAll("'", `'\\''`)}'`
}

const line = (words: string[]) => words.map((w) => shellQuote(w)).join(' ')
const pairs = (list: Array<[string, string]>) => list.map(([k, v]) => `${k}=${v}`)

function opWords(op: Op): string[] {
  const words: string[] = [op.name]
  if (op.name === 'monitor') words.push(`interval=${op.interval}s`)
  words.push(`timeout=${op.timeout}s`)
  if (op.checkLevel !== undefined) words.push(`OCF_CHECK_LEVEL=${op.checkLevel}`)
  return words
}

const agentName = (p: Primitive) => (p.class === 'stonith' ? p.type : `${p.class}:${p.provider}:${p.type}`)

function create(p: Primitive, group?: string): string {
  const ops = p.ops.flatMap((op) => opWords(op))
  const meta = p.meta.length > 0 ? ['meta', ...pairs(p.meta)] : []
  const kind = p.class === 'stonith' ? ['stonith', 'create'] : ['resource', 'create']
  return line(['pcs', ...kind, p.id, agentName(p), ...pairs(p.params), 'op', ...ops, ...meta, ...(group ? ['--group', group] : [])])
}

export function pcsCommands(plan: ClusterPlan): string[] {
  return [
    ...plan.fencing.map((f) => create(f)),
    line(['pcs', 'property', 'set', ...pairs(plan.properties)]),
    ...plan.group.members.map((m) => create(m, plan.group.id)),
    line(['pcs', 'resource', 'meta', plan.group.id, ...pairs(plan.group.meta)]),
    ...plan.avoids.map((a) => line(['pcs', 'constraint', 'location', a.rsc, ...(a.score === undefined ? ['avoids', a.node] : ['prefers', `${a.node}=${a.score}`])])),
  ]
}

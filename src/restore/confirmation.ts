import type {LocalNode} from '../facts/local-node.js'
import type {IdentityChange} from './identity-preview.js'
import {fileLines} from './render.js'
import type {RestoreResult} from './restore.js'

/**
 * What an operator reads before `ha restore` changes this host: which node this is and how ha
 * decided it, the backup, and what changes (identity files with their old → new value under
 * --takeover, how many entries each owner mapping re-owns). Built from the dry-run plan, so the
 * screen shows exactly what the real run, pinned to the same backup, will do.
 */
export function describeNode(node: LocalNode, configPath: string): string {
  const how =
    node.decidedBy === 'flag'
      ? `chosen with --node ${node.name}`
      : `this machine's hostname matches nodes.${node.name}.hostname in ${configPath}`
  const root = node.config.root === '/' ? '' : `, root ${node.config.root}`
  return `this is node ${node.name} (${node.config.hostname}${root}): ${how}`
}

export function describeRestore(plan: RestoreResult, node: LocalNode, configPath: string, cap?: number): string {
  const lines = [
    describeNode(node, configPath),
    `backup ${plan.backup.id}, taken on ${plan.backup.source_hostname} (${plan.backup.source_node}) at ${plan.backup.created_at}, product version ${plan.backup.product_version}`,
    `files: ${plan.counts.create} to create, ${plan.counts.replace} to replace, ${plan.counts.unchanged} already in place, ${plan.counts.skipped} not installed`,
  ]
  const identity = plan.files.filter((f) => f.role === 'identity' && f.action !== 'unchanged')
  if (plan.takeover) {
    lines.push(identity.length > 0 ? `identity of ${plan.backup.source_hostname} taken over (--takeover):` : 'identity: nothing differs from the backup (--takeover)')
    const changes = new Map((plan.identity_changes ?? []).map((c) => [c.path, c]))
    for (const f of identity) lines.push(...identityLines(f.action, f.path, changes.get(f.path)))
  }

  lines.push(...fileLines(plan.files, '  ', {all: 'ha restore --dry-run --json lists all', cap, filter: (f) => f.role !== 'identity'}))
  lines.push(`re-own of ${plan.data_dir}: ${plan.reown.changes} of ${plan.reown.entries} entries change owner`)
  const mappings = [...plan.reown.users.map((m) => ({...m, kind: 'user'})), ...plan.reown.groups.map((m) => ({...m, kind: 'group'}))]
  for (const m of mappings.filter((m) => m.entries > 0)) {
    lines.push(`  ${m.kind} ${m.name}: ${m.from_id} → ${m.to_id} (${m.entries.toLocaleString('en-US')} ${m.entries === 1 ? 'entry' : 'entries'})`)
  }

  lines.push(`everything replaced is kept for ha restore --undo`)
  return lines.join('\n')
}

/**
 * One identity file: the hostname's old → new value on its own line; other files their removed
 * (-) and added (+) identity lines below the path, each cut to fit 80 columns.
 */
function identityLines(action: string, path: string, change: IdentityChange | undefined): string[] {
  const head = `  ${action.padEnd(8)} ${path}`
  if (!change) return [head]
  if (change.summary && change.removed.length + change.added.length === 0) {
    const inline = `${head}  ${change.summary}`
    return inline.length <= 80 ? [inline] : [head, `      ${change.summary}`]
  }

  const out = [head, ...change.removed.map((l) => `      - ${l}`), ...change.added.map((l) => `      + ${l}`)]
  if (change.more > 0) out.push(`      … ${change.more} more changed ${change.more === 1 ? 'line' : 'lines'}`)
  return out
}

export function describeUndo(node: LocalNode, configPath: string): string {
  return [
    describeNode(node, configPath),
    'undo the newest restore on this node that is not undone yet: the re-own is reversed, then every file it replaced is put back',
  ].join('\n')
}

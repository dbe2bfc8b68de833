import {readFile} from 'node:fs/promises'

import {underRoot} from '../fs/under-root.js'
import type {LocalNode} from '../nodes.js'
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

export async function describeRestore(plan: RestoreResult, node: LocalNode, configPath: string): Promise<string> {
  const lines = [
    describeNode(node, configPath),
    `backup ${plan.backup.id}, taken on ${plan.backup.source_hostname} (${plan.backup.source_node}) at ${plan.backup.created_at}, product version ${plan.backup.product_version}`,
    `files: ${plan.counts.create} to create, ${plan.counts.replace} to replace, ${plan.counts.unchanged} already in place, ${plan.counts.skipped} not installed`,
  ]
  const identity = plan.files.filter((f) => f.role === 'identity' && f.action !== 'unchanged')
  if (plan.takeover) {
    lines.push(identity.length > 0 ? `identity of ${plan.backup.source_hostname} taken over (--takeover):` : 'identity: nothing differs from the backup (--takeover)')
    for (const f of identity) lines.push(`  ${f.action.padEnd(8)} ${f.path}${await identityChange(f.path, plan, node)}`)
  }

  const changed = plan.files.filter((f) => f.role !== 'identity' && f.action !== 'unchanged')
  for (const f of changed) lines.push(`  ${f.action.padEnd(8)} ${f.path}  ${f.user ?? f.uid}:${f.group ?? f.gid} ${f.mode}`)
  lines.push(`re-own of ${plan.data_dir}: ${plan.reown.changes} of ${plan.reown.entries} entries change owner`)
  const mappings = [...plan.reown.users.map((m) => ({...m, kind: 'user'})), ...plan.reown.groups.map((m) => ({...m, kind: 'group'}))]
  for (const m of mappings.filter((m) => m.entries > 0)) {
    lines.push(`  ${m.kind} ${m.name}: ${m.from_id} → ${m.to_id} (${m.entries} ${m.entries === 1 ? 'entry' : 'entries'})`)
  }

  lines.push(`everything replaced is kept for ha restore --undo`)
  return lines.join('\n')
}

export function describeUndo(node: LocalNode, configPath: string): string {
  return [
    describeNode(node, configPath),
    'undo the newest restore on this node that is not undone yet: the re-own is reversed, then every file it replaced is put back',
  ].join('\n')
}

/** The hostname is the identity an operator recognises; its old and new value are shown. */
async function identityChange(path: string, plan: RestoreResult, node: LocalNode): Promise<string> {
  if (path !== '/etc/hostname') return ''
  const now = (await readFile(underRoot(node.config.root, path), 'utf8').catch(() => '')).split('\n')[0].trim()
  return `  ${now ? `"${now}"` : '(none)'} → "${plan.backup.source_hostname}"`
}

import type {Colors} from '../core/colors.js'
import type {ClusterSetupResult} from './setup.js'

/** ha cluster setup at a terminal: the XML and the pcs commands as one can copy them, then what --apply did. */
export function renderSetup(r: ClusterSetupResult, c: Colors): string {
  const lines = [
    c.dim(`<!-- The Pacemaker configuration for ha.yaml (the controller reads ${r.node_config} on the nodes) -->`),
    r.cib.trimEnd(),
    '',
    c.dim('# The same with pcs:'),
    ...r.pcs,
  ]
  if (r.applied) {
    const a = r.applied
    lines.push('')
    const verdict = a.verified_live ? 'crm_verify -L accepts it' : c.red('crm_verify -L rejects the live CIB')
    if (a.changes.length === 0) lines.push(`this node's CIB already holds this configuration: ${c.green('nothing changed')} (epoch ${a.epoch_before}); ${verdict}`)
    else {
      lines.push(`${c.green('applied')} to this node's CIB (epoch ${a.epoch_before} -> ${a.epoch_after}); ${verdict}:`)
      for (const change of a.changes) lines.push(`  ${change}`)
    }

    if (a.verify_warnings) lines.push(`${c.yellow('crm_verify -L says')}: ${a.verify_warnings}`)
  }

  return lines.join('\n')
}

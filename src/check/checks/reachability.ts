import {type NodeName, nodeNames} from '../../config/schema.js'
import type {NodeFacts} from '../gather.js'
import type {CheckItem} from '../types.js'

/** Each node answered over SSH with a host key known_hosts vouches for, and ran the probes. */
export function reachabilityChecks(facts: Record<NodeName, NodeFacts>): CheckItem[] {
  return nodeNames.map((node) => {
    const {report} = facts[node]
    const evidence = {address: report.address, elapsed_ms: report.elapsed_ms, host_key: report.host_key ?? null}
    if (report.reachable && facts[node].probes) {
      const how = report.address === 'local' ? 'this machine (no ssh block)' : `${report.address}, host key ${report.host_key}`
      return {evidence, id: 'reachable', node, status: 'pass', summary: `reachable: ${how}`, title: 'SSH reachability and host key'}
    }

    const summary = report.reachable
      ? `${node} answered, but its probes failed: ${report.error?.message ?? 'unknown error'}`
      : report.error?.message.includes(node)
        ? report.error.message
        : `cannot connect to ${node}: ${report.error?.message ?? 'unknown error'}`
    return {
      evidence: {...evidence, actions: report.error?.actions ?? [], error_kind: report.error?.kind},
      id: 'reachable',
      node,
      status: 'fail',
      summary,
      title: 'SSH reachability and host key',
    }
  })
}

/** The nodes whose probes we could not get, for checks that must fail rather than guess. */
export function unreachable(facts: Record<NodeName, NodeFacts>): NodeName[] {
  return nodeNames.filter((node) => !facts[node].probes)
}

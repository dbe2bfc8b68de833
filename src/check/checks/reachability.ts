import {type NodeName, nodeNames} from '../../config/schema.js'
import type {NodeFacts} from '../types.js'
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
      ? `${node} answered (host key good), but its probe batch failed: ${report.error?.message ?? 'unknown error'}`
      : report.error?.message.includes(node)
        ? report.error.message
        : `cannot connect to ${node}: ${report.error?.message ?? 'unknown error'}`
    const actions = report.error?.actions.length
      ? report.error.actions
      : report.reachable
        ? [`run ha check again; if it fails the same way, log in to ${node} and look for a hung mount or an overloaded host`]
        : [`check that ${node} is up and its sshd answers at ${report.address}`]
    return {
      actions,
      evidence: {...evidence, actions, error_kind: report.error?.kind},
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

/**
 * Why a node's probes are missing, as the other rows say it: "unreachable" only when it did
 * not answer; a node that answered and whose batch then failed (cut, timed out) says so.
 */
export function whyNoAnswer(facts: Record<NodeName, NodeFacts>, node: NodeName): string {
  const {report} = facts[node]
  if (!report.reachable) return `${node} unreachable`
  return `${node} answered but its probes failed (${report.error?.message ?? 'unknown error'})`
}

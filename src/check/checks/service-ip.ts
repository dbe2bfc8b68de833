import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {interpretArping, type WireResult} from '../../net/arping.js'
import {addressOnly, parseIpAddr, parseIpLink} from '../../net/ip-addr.js'
import type {NodeFacts} from '../gather.js'
import {probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'

/**
 * Seed 001: "You must prevent the primary and secondary ... from using the same IP addresses at
 * the same time." Configured on a node (`ip -o addr`) and answering on the wire (`arping -D`
 * from the node that would take it) are both looked at: a third machine can hold an address
 * neither node has configured.
 */
export function serviceIpChecks(config: Config, facts: Record<NodeName, NodeFacts>): CheckItem[] {
  return config.service_ips.map((ip) => {
    const address = addressOnly(ip.address)
    const holders: NodeName[] = []
    const unknown: NodeName[] = []
    const macs: Partial<Record<NodeName, string[]>> = {}
    const wire: Partial<Record<NodeName, WireResult>> = {}
    for (const node of nodeNames) {
      const probes = facts[node].probes
      if (!probes) {
        unknown.push(node)
        continue
      }

      const addrs = parseIpAddr(probes.get(probeIds.ipAddr)?.stdout.toString() ?? '')
      if (addrs.some((a) => a.family === 'inet' && a.address === address)) holders.push(node)
      macs[node] = parseIpLink(probes.get(probeIds.ipLink)?.stdout.toString() ?? '').flatMap((l) => (l.mac ? [l.mac] : []))
      const probe = probes.get(probeIds.wire(ip.address))
      if (probe) wire[node] = interpretArping(probe.code, probe.stdout.toString(), probe.stderr.toString())
    }

    const evidence = {address: ip.address, held_by: holders, interface: ip.interface, unreachable: unknown, wire}
    const base = {evidence, id: 'service_ip', title: `Service IP ${ip.address}`}
    if (holders.length === 2) return {...base, status: 'fail' as const, summary: `${address} is held by BOTH nodes: two actives`}
    if (unknown.length > 0) {
      const known = holders.length === 1 ? `held by ${holders[0]}` : 'held by no reachable node'
      return {...base, status: 'fail' as const, summary: `${address} ${known}; cannot tell whether ${unknown.join(' and ')} ${unknown.length > 1 ? 'hold' : 'holds'} it (unreachable)`}
    }

    const answered = nodeNames.flatMap((n) => {
      const w = wire[n]
      return w?.state === 'answered' ? w.macs.map((mac) => ({from: n, mac})) : []
    })
    const errors = nodeNames.flatMap((n) => {
      const w = wire[n]
      return w?.state === 'error' ? [`${n}: ${w.message || `arping exit ${w.exit_code}`}`] : []
    })
    if (holders.length === 1) {
      const holder = holders[0]
      const strangers = answered.filter((a) => !(macs[holder] ?? []).includes(a.mac))
      if (strangers.length > 0) {
        return {...base, status: 'fail' as const, summary: `${address} is held by ${holder}, but ${[...new Set(strangers.map((s) => s.mac))].join(', ')} (not ${holder}) also answers for it on the wire`}
      }

      if (answered.length > 0) return {...base, status: 'pass' as const, summary: `${address} held by ${holder} only (answers on the wire with ${answered[0].mac})`}
      if (errors.length > 0) return {...base, status: 'warn' as const, summary: `${address} held by ${holder}; could not confirm on the wire (${errors.join('; ')})`}
      return {...base, status: 'warn' as const, summary: `${address} held by ${holder}, but nothing answers for it on the wire (interface down?)`}
    }

    if (answered.length > 0) {
      return {...base, status: 'fail' as const, summary: `${address} is held by neither node, yet ${[...new Set(answered.map((a) => a.mac))].join(', ')} answers for it: another machine has it`}
    }

    const wireNote = errors.length > 0 ? `; wire probe failed (${errors.join('; ')})` : '; nothing answers on the wire'
    return {...base, status: 'warn' as const, summary: `${address} is held by no node${wireNote}`}
  })
}

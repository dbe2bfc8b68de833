import {type Config, type NodeName, nodeNames} from '../../config/schema.js'
import {interpretArping, type WireResult} from '../../net/arping.js'
import {addressOnly, parseIpAddr, parseIpLink} from '../../net/ip-addr.js'
import type {Roles} from '../../pair/roles.js'
import type {NodeFacts} from '../types.js'
import {probeFailure, probeIds} from '../probes.js'
import type {CheckItem} from '../types.js'
import {whyNoAnswer} from './reachability.js'

/**
 * Seed 001: "You must prevent the primary and secondary ... from using the same IP addresses at
 * the same time." Configured on a node (`ip -o addr`) and answering on the wire (`arping -D`
 * from the node that would take it) are both looked at: a third machine can hold an address
 * neither node has configured.
 */
export function serviceIpChecks(config: Config, facts: Record<NodeName, NodeFacts>, roles?: Roles): CheckItem[] {
  return config.service_ips.map((ip) => {
    const address = addressOnly(ip.address)
    const holders: NodeName[] = []
    const unknown: NodeName[] = []
    const why: string[] = []
    const macs: Partial<Record<NodeName, string[]>> = {}
    const wire: Partial<Record<NodeName, WireResult>> = {}
    for (const node of nodeNames) {
      const probes = facts[node].probes
      const addrProbe = probes?.get(probeIds.ipAddr)
      if (!probes || !addrProbe || addrProbe.code !== 0) {
        unknown.push(node)
        why.push(addrProbe ? `${node}: ${probeFailure(addrProbe, facts[node].probe_budget_s)}` : whyNoAnswer(facts, node))
        continue
      }

      const addrs = parseIpAddr(addrProbe.stdout.toString())
      if (addrs.some((a) => a.family === 'inet' && a.address === address)) holders.push(node)
      macs[node] = parseIpLink(probes.get(probeIds.ipLink)?.stdout.toString() ?? '').flatMap((l) => (l.mac ? [l.mac] : []))
      const probe = probes.get(probeIds.wire(ip.address))
      if (probe?.code === 124 || probe?.code === 137) wire[node] = {exit_code: probe.code, message: probeFailure(probe, facts[node].probe_budget_s), state: 'error'}
      else if (probe) wire[node] = interpretArping(probe.code, probe.stdout.toString(), probe.stderr.toString())
    }

    const evidence = {active: roles?.active ?? null, address: ip.address, held_by: holders, interface: ip.interface, unreachable: unknown, wire}
    const base = {evidence, id: 'service_ip', title: `Service IP ${ip.address}`}
    if (holders.length === 2) {
      const actions = [`remove ${address} from the node that must not be active (ip addr del ${ip.address} dev ${ip.interface}) before anything else`]
      return {...base, actions, status: 'fail' as const, summary: `${address} is held by BOTH nodes: two actives`}
    }
    if (unknown.length > 0) {
      const known = holders.length === 1 ? `held by ${holders[0]}` : 'held by no reachable node'
      const actions = [`find out why ${unknown.join(' and ')} did not answer (see the reachable rows), then run ha check again`]
      return {...base, actions, status: 'fail' as const, summary: `${address} ${known}; cannot tell whether ${unknown.join(' and ')} ${unknown.length > 1 ? 'hold' : 'holds'} it: ${why.join('; ')}`}
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
      // Held by the standby alone: the epoch and the wire disagree. A failover from here would
      // take the address from the node that serves it (or leave two holders after a rejoin).
      if (roles && holder !== roles.active) {
        const actions = [
          `a failover may be half done: ha status says so, and ha failover --resume finishes it`,
          `otherwise ${roles.active} is the active node: remove ${address} from ${holder} (ip addr del ${ip.address} dev ${ip.interface}) and bring the service up on ${roles.active}`,
        ]
        return {...base, actions, status: 'fail' as const, summary: `${address} is held by ${holder}, the standby, but ${activeBecause(roles)}: the roles and the wire disagree`}
      }

      const strangers = answered.filter((a) => !(macs[holder] ?? []).includes(a.mac))
      if (strangers.length > 0) {
        const actions = [`find the machine with MAC ${[...new Set(strangers.map((s) => s.mac))].join(', ')} and remove ${address} from it`]
        return {...base, actions, status: 'fail' as const, summary: `${address} is held by ${holder}, but ${[...new Set(strangers.map((s) => s.mac))].join(', ')} (not ${holder}) also answers for it on the wire`}
      }

      const who = roles ? `${holder} only, the active node` : `${holder} only`
      if (answered.length > 0) return {...base, status: 'pass' as const, summary: `${address} held by ${who} (answers on the wire with ${answered[0].mac})`}
      if (errors.length > 0) return {...base, actions: ['check that arping is installed and the interface can ARP'], status: 'warn' as const, summary: `${address} held by ${holder}; could not confirm on the wire (${errors.join('; ')})`}
      return {...base, actions: [`check that ${ip.interface} is up on ${holder}`], status: 'warn' as const, summary: `${address} held by ${holder}, but nothing answers for it on the wire (interface down?)`}
    }

    if (answered.length > 0) {
      return {...base, actions: [`find the machine answering for ${address} and remove it there before failing over`], status: 'fail' as const, summary: `${address} is held by neither node, yet ${[...new Set(answered.map((a) => a.mac))].join(', ')} answers for it: another machine has it`}
    }

    const wireNote = errors.length > 0 ? `; wire probe failed (${errors.join('; ')})` : '; nothing answers on the wire'
    return {...base, actions: [`bring the service up on the active node${roles ? `, ${roles.active},` : ''} (it should hold ${address})`], status: 'warn' as const, summary: `${address} is held by no node${wireNote}`}
  })
}

/** Why a node counts as active, in words: the epoch's, or before any takeover the storage's or the config's. */
export function activeBecause(roles: Roles): string {
  if (roles.source !== 'config') return `the epoch (${roles.epoch}) says ${roles.active} is active`
  return `before any takeover ${roles.active} counts as active (${roles.storage_on.includes(roles.active) ? 'it holds the storage' : "the config's primary"})`
}

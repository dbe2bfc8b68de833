import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {configSchema} from '../../src/config/schema.js'
import {guestChecks} from '../../src/check/checks/guests.js'
import type {NodeFacts} from '../../src/check/types.js'
import {guestLine, guestRows, placementLines} from '../../src/guests/report.js'
import {nodeGuestsFrom} from '../../src/guests/guest-view.js'
import type {ProbeResult} from '../../src/hosts/host.js'
import type {Roles} from '../../src/pair/roles.js'

/**
 * The guests as ha check and ha status show them, from what each node's virsh printed (the texts
 * below are virsh 9.0's own formats): where each runs, and whether the standby can hold it.
 */
const config = configSchema.parse({
  data_dir: '/srv',
  guests: [
    {name: 'db1', priority: 10},
    {name: 'web1', priority: 5},
    {name: 'test1', priority: 0},
  ],
  nodes: {primary: {hostname: 'ctl-a'}, secondary: {hostname: 'ctl-b'}},
})

const list = (rows: Array<[string, string]>) => ` Id   Name   State\n-----------------------\n${rows.map(([name, state], i) => ` ${state === 'running' ? i + 1 : '-'}    ${name}   ${state}`).join('\n')}\n`
const info = (kib: number, autostart = false) => `Id:             -\nState:          shut off\nMax memory:     ${kib} KiB\nUsed memory:    ${kib} KiB\nPersistent:     yes\nAutostart:      ${autostart ? 'enable' : 'disable'}\n`
const ok = (stdout: string): ProbeResult => ({argv: [], code: 0, id: '', stderr: Buffer.alloc(0), stdout: Buffer.from(stdout)})

function node(domains: Array<[string, string]>, freeKiB: number, autostart: string[] = []): NodeFacts {
  const probes = new Map<string, ProbeResult>([
    ['guests:list', ok(list(domains))],
    ['guests:freecell', ok(`    0:       ${freeKiB} KiB\n--------------------\nTotal:       ${freeKiB} KiB\n`)],
    ['guests:freepages', ok('Node 0:\n4KiB: 100\n2048KiB: 0\n')],
  ])
  for (const [name] of domains) {
    probes.set(`guests:dominfo:${name}`, ok(info(name === 'db1' ? 4 * 1024 * 1024 : 1024 * 1024, autostart.includes(name))))
    probes.set(`guests:dumpxml:${name}`, ok(`<domain type='kvm'>\n  <name>${name}</name>\n</domain>\n`))
  }

  return {probe_budget_s: 20, probes, report: {address: 'x', elapsed_ms: 1, node: 'primary', reachable: true}, root: '/', state_dir: '/srv/.ha'}
}

const roles = {active: 'primary', standby: 'secondary'} as Roles

describe('guests in ha check and ha status', () => {
  it('says where each runs and what a failover would do on the standby; warns when the standby cannot start a favoured one even after shedding', () => {
    const facts = {
      primary: node([['db1', 'running'], ['web1', 'shut off'], ['test1', 'shut off']], 8 * 1024 * 1024),
      secondary: node([['db1', 'shut off'], ['web1', 'running'], ['test1', 'running']], 1024 * 1024),
    }
    const {checks, rows} = guestChecks(config, facts, roles)
    assert.deepEqual(checks.map((c) => [c.title, c.status]), [
      ['Guest db1', 'warn'],
      ['Guest web1', 'pass'],
      ['Guest test1', 'pass'],
    ])
    assert.match(checks[0].summary, /runs on primary; a failover could not start it on secondary: needs 4096 MiB of memory; the target has 1024 MiB of memory and 0 MiB of huge pages free, and no more than 3072 MiB of memory and 0 MiB of huge pages after shutting down every less favoured guest/)
    assert.match(guestLine(rows[0]), /^db1 \(priority 10\): runs on primary \(primary running, secondary shut off\); a failover to secondary would NOT start it/)
    assert.match(checks[1].summary, /runs on secondary; a failover keeps it on secondary/)
  })

  it('sheds for a favoured guest when that makes room, and fails a guest that runs on both nodes', () => {
    const facts = {
      primary: node([['db1', 'running'], ['web1', 'running'], ['test1', 'shut off']], 8 * 1024 * 1024, ['db1']),
      secondary: node([['db1', 'shut off'], ['web1', 'running'], ['test1', 'running']], 3 * 1024 * 1024 + 512 * 1024),
    }
    const {checks} = guestChecks(config, facts, roles)
    assert.deepEqual(checks.map((c) => [c.title, c.status]), [
      ['Guest db1', 'warn'],
      ['Guest web1', 'fail'],
      ['Guest test1', 'pass'],
    ])
    assert.match(checks[0].summary, /set to start at boot on primary/)
    assert.match(checks[0].actions![0], /virsh autostart --disable db1 on primary/)
    assert.equal(checks[1].summary, 'web1 RUNS ON BOTH NODES')
    assert.match(checks[2].summary, /runs on secondary; a failover shuts it down on secondary: to make room for db1 \(priority 10 over 0\)/)
  })

  it('a node whose libvirtd cannot be read is named, not guessed', () => {
    const silent = node([], 0)
    silent.probes!.set('guests:list', {argv: [], code: 1, id: '', stderr: Buffer.from('error: failed to connect to the hypervisor\n'), stdout: Buffer.alloc(0)})
    const {checks, rows} = guestChecks(config, {primary: node([['db1', 'running']], 8 * 1024 * 1024), secondary: silent}, roles)
    assert.equal(checks[0].status, 'warn')
    assert.match(checks[0].summary, /libvirtd not read on secondary: error: failed to connect to the hypervisor \(virsh -c qemu:\/\/\/system\)/)
    assert.equal(rows[0].states.secondary, null)
    assert.equal(rows[0].failover, null)
  })

  it('a hugepage-backed guest too big for the standby\'s huge pages even after shedding: the warning says where its room is', () => {
    const hp = configSchema.parse({...config, guests: [{name: 'db1', priority: 20}, {name: 'test1', priority: 1}]})
    const facts = {primary: node([['db1', 'running'], ['test1', 'shut off']], 8 * 1024 * 1024), secondary: node([['db1', 'shut off'], ['test1', 'running']], 8 * 1024 * 1024)}
    for (const n of ['primary', 'secondary'] as const) {
      for (const name of ['db1', 'test1']) facts[n].probes!.set(`guests:dumpxml:${name}`, ok(`<domain type='kvm'>\n  <name>${name}</name>\n  <memoryBacking><hugepages/></memoryBacking>\n</domain>\n`))
      facts[n].probes!.set('guests:freepages', ok('Node 0:\n4KiB: 100\n2048KiB: 1000\n'))
      // The standby's hugetlbfs is full (its size= holds no more): 0 pages of 2 MiB free.
      facts[n].probes!.set('guests:hugetlbfs', ok('0 2097152\n'))
    }

    const {checks} = guestChecks(hp, facts, roles)
    assert.equal(checks[0].status, 'warn')
    assert.match(checks[0].summary, /a failover could not start it on secondary: needs 4096 MiB of huge pages; the target has 8192 MiB of memory and 0 MiB of huge pages free, and no more than 8192 MiB of memory and 1024 MiB of huge pages after shutting down every less favoured guest/)
    assert.match(checks[0].actions![0], /^make room for its huge pages on secondary: the hugetlbfs QEMU maps them from \(\/dev\/hugepages, its size=\) and the kernel's pool \(vm.nr_hugepages\)/)
  })

  it('a guest left off for apart is told about apart, not about memory', () => {
    const apart = configSchema.parse({...config, guests: [{apart: ['web1'], name: 'db1', priority: 10}, {name: 'web1', priority: 5}]})
    const facts = {primary: node([['db1', 'shut off'], ['web1', 'running']], 8 * 1024 * 1024), secondary: node([['db1', 'running'], ['web1', 'shut off']], 8 * 1024 * 1024)}
    const {checks} = guestChecks(apart, facts, roles)
    assert.deepEqual(checks.map((c) => c.status), ['pass', 'warn'])
    assert.match(checks[1].summary, /a failover could not start it on secondary: apart from db1, which is favoured/)
    assert.match(checks[1].actions![0], /^web1 must not share a node with a more favoured guest that runs on secondary \(apart in ha.yaml\)/)
  })

  it('ha failover --plan\'s guest lines: the guests shut down first, then by priority; not decided when a node\'s libvirtd was not read', () => {
    const facts = {
      primary: node([['db1', 'running'], ['web1', 'shut off'], ['test1', 'shut off']], 8 * 1024 * 1024),
      secondary: node([['db1', 'shut off'], ['web1', 'running'], ['test1', 'running']], 3 * 1024 * 1024 + 512 * 1024),
    }
    const views = {primary: nodeGuestsFrom(config, 'primary', facts.primary.probes!), secondary: nodeGuestsFrom(config, 'secondary', facts.secondary.probes!)}
    assert.deepEqual(placementLines(guestRows(config, views, 'primary'), 'ctl-b (secondary)'), [
      "Guests on ctl-b (secondary), from what both nodes' libvirtd report now (guests-start decides again when it runs):",
      '  test1 (priority 0): SHUT DOWN there first, before any guest arrives (to make room for db1 (priority 10 over 0))',
      '  db1 (priority 10): started there (4096 MiB of memory, once test1 is shut down)',
      '  web1 (priority 5): keeps running there (runs there)',
    ])
    assert.deepEqual(placementLines(guestRows(config, {primary: views.primary}, 'primary'), 'ctl-b (secondary)'), ['Guests: not decided: libvirtd was not read on both nodes (ha status shows what each node answered)'])
    assert.deepEqual(placementLines(guestRows(config, views, null), 'ctl-b (secondary)'), ['Guests: not decided: libvirtd was not read on both nodes (ha status shows what each node answered)'])
  })

  it('no guests: no rows', () => {
    const none = configSchema.parse({...config, guests: []})
    assert.deepEqual(guestChecks(none, {primary: node([], 0), secondary: node([], 0)}, roles), {checks: [], rows: []})
  })
})

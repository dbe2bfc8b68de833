import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {after, before, describe, test} from 'node:test'
import {fileURLToPath} from 'node:url'

import type {CheckItem, CheckReport} from '../../src/check/types.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {startSshd, type TestSshd} from '../helpers/sshd.js'

/**
 * The service-IP check end to end on a real wire: three namespaces this test makes (admin with a
 * bridge, primary, secondary; 198.18.50.0/24 only), an sshd in each node, `ha check` run from the
 * admin namespace. Who holds the address is changed with `ip addr` between runs.
 */
const skip = missingPrerequisite(['root', 'sshd', 'netns', 'arping'])
const top = join(dirname(fileURLToPath(import.meta.url)), '../..')
const tag = String(process.pid % 100_000)
const ns = {admin: `ha-chk-adm-${tag}`, primary: `ha-chk-pri-${tag}`, secondary: `ha-chk-sec-${tag}`}
const addr = {admin: '198.18.50.1', primary: '198.18.50.2', secondary: '198.18.50.3'}
const serviceIp = '198.18.50.100/24'
const ip = (...args: string[]) => execFileSync('ip', args, {stdio: ['ignore', 'pipe', 'pipe']}).toString()

describe('ha check service IP on a real wire between namespaces', {skip}, () => {
  let work: string
  const sshds: TestSshd[] = []
  let config: string
  const macs: Record<string, string> = {}

  const check = (): {report: CheckReport; ipCheck: CheckItem; status: number | null} => {
    const r = spawnSync('ip', ['netns', 'exec', ns.admin, process.execPath, join(top, 'bin/run.js'), 'check', '--config', config, '--json'], {encoding: 'utf8', timeout: 60_000})
    const report = (JSON.parse(r.stdout) as {result: CheckReport}).result
    return {ipCheck: report.checks.find((c) => c.id === 'service_ip')!, report, status: r.status}
  }

  before(async () => {
    assert.ok(existsSync(join(top, 'dist/commands/check.js')), 'the CLI is not built: run npm run build (npm test does)')
    work = mkdtempSync(join(tmpdir(), 'ha-chk-netns-'))
    for (const name of Object.values(ns)) ip('netns', 'add', name)
    ip('-n', ns.admin, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', ns.admin, 'link', 'set', 'br0', 'up')
    ip('-n', ns.admin, 'addr', 'add', `${addr.admin}/24`, 'dev', 'br0')
    for (const node of ['primary', 'secondary'] as const) {
      // Both ends are created inside the test's namespaces: nothing appears in the machine's own.
      ip('-n', ns.admin, 'link', 'add', `v-${node}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[node])
      ip('-n', ns.admin, 'link', 'set', `v-${node}`, 'master', 'br0', 'up')
      ip('-n', ns[node], 'link', 'set', 'eth0', 'up')
      ip('-n', ns[node], 'link', 'set', 'lo', 'up')
      ip('-n', ns[node], 'addr', 'add', `${addr[node]}/24`, 'dev', 'eth0')
      macs[node] = /link\/ether (\S+)/.exec(ip('-n', ns[node], '-o', 'link', 'show', 'eth0'))![1]
      const root = join(work, node)
      mkdirSync(join(root, 'n1gc-setup'), {recursive: true})
      mkdirSync(join(root, 'var/opt/sun/xvm'), {recursive: true})
      writeFileSync(join(root, 'n1gc-setup/.version.properties'), 'product.version=2.1.0\n')
      sshds.push(await startSshd({listen: addr[node], netns: ns[node]}))
    }

    writeFileSync(join(work, 'known_hosts'), sshds.map((s) => `${s.knownHostsLine}\n`).join(''))
    const nodeYaml = (node: 'primary' | 'secondary', s: TestSshd) =>
      `  ${node}:\n    hostname: ${node}\n    root: ${join(work, node)}\n    ssh:\n      host: ${s.host}\n      identity_file: ${s.clientKey}\n      known_hosts: ${join(work, 'known_hosts')}\n      connect_timeout: 5s\n`
    config = join(work, 'ha.yaml')
    writeFileSync(config, `data_dir: /var/opt/sun/xvm\nnodes:\n${nodeYaml('primary', sshds[0])}${nodeYaml('secondary', sshds[1])}service_ips:\n  - address: ${serviceIp}\n    interface: eth0\n`)
  })

  after(async () => {
    await Promise.all(sshds.map((s) => s.stop()))
    for (const name of Object.values(ns)) spawnSync('ip', ['netns', 'del', name])
    if (work) rmSync(work, {force: true, recursive: true})
  })

  test('held by the primary: PASS, and the secondary hears the primary\'s MAC answer', () => {
    ip('-n', ns.primary, 'addr', 'add', serviceIp, 'dev', 'eth0')
    try {
      const {ipCheck, report} = check()
      assert.equal(report.nodes.primary.reachable, true, JSON.stringify(report.nodes.primary))
      assert.equal(ipCheck.status, 'pass', ipCheck.summary)
      assert.deepEqual(ipCheck.evidence.held_by, ['primary'])
      assert.deepEqual((ipCheck.evidence.wire as Record<string, unknown>).secondary, {macs: [macs.primary], state: 'answered'})
      assert.deepEqual((ipCheck.evidence.wire as Record<string, unknown>).primary, {state: 'skipped_held_here'})
    } finally {
      ip('-n', ns.primary, 'addr', 'del', serviceIp, 'dev', 'eth0')
    }
  })

  test('held by both nodes: FAIL, exit 3', () => {
    ip('-n', ns.primary, 'addr', 'add', serviceIp, 'dev', 'eth0')
    ip('-n', ns.secondary, 'addr', 'add', serviceIp, 'dev', 'eth0')
    try {
      const {ipCheck, status} = check()
      assert.equal(status, 3)
      assert.equal(ipCheck.status, 'fail')
      assert.equal(ipCheck.summary, '198.18.50.100 is held by BOTH nodes: two actives')
    } finally {
      ip('-n', ns.primary, 'addr', 'del', serviceIp, 'dev', 'eth0')
      ip('-n', ns.secondary, 'addr', 'del', serviceIp, 'dev', 'eth0')
    }
  })

  test('held by neither node but a third machine answers for it: FAIL naming its MAC', () => {
    ip('-n', ns.admin, 'addr', 'add', serviceIp, 'dev', 'br0')
    const adminMac = /link\/ether (\S+)/.exec(ip('-n', ns.admin, '-o', 'link', 'show', 'br0'))![1]
    try {
      const {ipCheck} = check()
      assert.equal(ipCheck.status, 'fail')
      assert.match(ipCheck.summary, new RegExp(`held by neither node, yet ${adminMac} answers for it`))
    } finally {
      ip('-n', ns.admin, 'addr', 'del', serviceIp, 'dev', 'br0')
    }
  })

  test('held by nobody and silent on the wire: WARN', () => {
    const {ipCheck} = check()
    assert.equal(ipCheck.status, 'warn')
    assert.equal(ipCheck.summary, '198.18.50.100 is held by no node; nothing answers on the wire')
  })

  test('by the epoch, not the config\'s words: held by the standby only FAILs (roles and wire disagree), held by the active node PASSes', () => {
    // Both nodes noted that the secondary took over (epoch 1); the storage is attached nowhere.
    for (const node of ['primary', 'secondary'] as const) {
      mkdirSync(join(work, node, 'var/lib/ha'), {recursive: true})
      writeFileSync(join(work, node, 'var/lib/ha/epoch.json'), `${JSON.stringify({active: 'secondary', at: '2026-11-29T21:00:00.000Z', by: 'root@admin', epoch: 1, run_id: '20261129T210000Z-000001'})}\n`)
    }

    try {
      ip('-n', ns.primary, 'addr', 'add', serviceIp, 'dev', 'eth0')
      try {
        const {ipCheck, report, status} = check()
        assert.equal(status, 3)
        assert.deepEqual(report.roles, {active: 'secondary', epoch: 1, source: 'node', standby: 'primary'})
        assert.equal(ipCheck.status, 'fail')
        assert.equal(ipCheck.summary, '198.18.50.100 is held by primary, the standby, but the epoch (1) says secondary is active: the roles and the wire disagree')
        assert.match(ipCheck.actions!.join('\n'), /ha failover --resume/)
        assert.match(ipCheck.actions!.join('\n'), /ip addr del 198\.18\.50\.100\/24 dev eth0/)
      } finally {
        ip('-n', ns.primary, 'addr', 'del', serviceIp, 'dev', 'eth0')
      }

      ip('-n', ns.secondary, 'addr', 'add', serviceIp, 'dev', 'eth0')
      try {
        const {ipCheck, report} = check()
        assert.equal(ipCheck.status, 'pass', ipCheck.summary)
        assert.match(ipCheck.summary, /held by secondary only, the active node \(answers on the wire with /)
        // The restore would run on the standby, the primary.
        assert.ok(report.checks.some((c) => c.id === 'restore_space' && c.node === 'primary'))
      } finally {
        ip('-n', ns.secondary, 'addr', 'del', serviceIp, 'dev', 'eth0')
      }
    } finally {
      for (const node of ['primary', 'secondary'] as const) rmSync(join(work, node, 'var/lib/ha'), {force: true, recursive: true})
    }
  })
})

import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {labAddServiceIp, labNetns, labPaths, labRegenerateHostKey, labServiceIp, labSetVersion} from '../../src/lab/lab.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor, labDone, labReady} from './shared-lab.js'

// ha runs from the admin namespace and reaches both controllers over ssh, as in production.
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('check')
const lab = labPaths(labDir)
const fromAdmin = {prefix: ['ip', 'netns', 'exec', labNetns.admin], timeoutMs: 60_000}

function ssh(node: 'primary' | 'secondary', command: string) {
  const host = node === 'primary' ? '198.18.0.2' : '198.18.0.3'
  const r = spawnSync(
    'ip',
    ['netns', 'exec', labNetns.admin, 'ssh', '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${host}`, command],
    {encoding: 'utf8', timeout: 30_000},
  )
  return {status: r.status, stderr: r.stderr ?? '', stdout: r.stdout ?? ''}
}

function check(...flags: string[]) {
  const r = ha(['check', '--json', '--config', lab.config, ...flags], fromAdmin)
  assert.ok(r.json, `ha check printed no JSON: ${r.stdout}${r.stderr}`)
  const byId = (id: string, node?: string) =>
    r.json!.result.checks.find((c: {id: string; node?: string}) => c.id === id && (node === undefined || c.node === node))
  return {...r, byId}
}

describe('ha check in the lab', {skip}, () => {
  before(async () => {
    await labReady(labDir)
  })
  after(() => labDone(labDir))

  it('backs up on the primary over ssh, as its cron would, onto the shared storage', () => {
    // The primary's own hostname (its UTS namespace) picks the node: no --node, like cron.
    const r = spawnSync(
      'ip',
      // ha as installed on the node, its own /etc/ha/ha.yaml (root: /), exactly the cron line.
      ['netns', 'exec', labNetns.admin, 'ssh', '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', 'root@198.18.0.2', 'ha', 'backup', '--quiet', '--if-attached'],
      {encoding: 'utf8', timeout: 60_000},
    )
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout + r.stderr, '')
  })

  it('passes on a healthy pair: every check PASS, exit 0', () => {
    const r = check()
    assert.equal(r.status, 0, JSON.stringify(r.json?.result.checks, null, 1))
    assert.deepEqual(r.json!.result.counts, {fail: 0, pass: 12, warn: 0})
    for (const node of ['primary', 'secondary']) {
      const row = r.byId('boot_config', node)
      assert.equal(row?.status, 'pass', `a boot_config row for ${node}: ${JSON.stringify(row)}`)
    }
    assert.deepEqual(r.json!.result.roles, {active: 'primary', epoch: 0, source: 'config', standby: 'secondary'})
    assert.match(r.byId('service_ip').summary, /held by primary only/)
    assert.match(r.byId('storage').summary, /mounted on primary only/)
  })

  it('runs ha backup from the primary\'s own cron: a per-minute /etc/cron.d entry leaves an archive', async () => {
    const list = () => ssh('primary', 'ls /var/opt/sun/xvm/.ha/backups').stdout.split('\n').filter((n) => n.endsWith('.tar.gz'))
    const before = list()
    // Written through ssh like an admin would; cron rereads /etc/cron.d at the next minute.
    const entry = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n* * * * * root ha backup --quiet --if-attached\n'
    assert.equal(ssh('primary', `printf '${entry}' > /etc/cron.d/ha-every-minute && chmod 644 /etc/cron.d/ha-every-minute`).status, 0)
    try {
      const deadline = Date.now() + 75_000
      while (Date.now() < deadline && list().length === before.length) await sleep(2000)
      assert.ok(list().length > before.length, `no new archive within 75 s (cron running: ${ssh('primary', 'cat /run/crond.pid').stdout.trim() || 'no'})`)
    } finally {
      ssh('primary', 'rm -f /etc/cron.d/ha-every-minute')
    }
  })

  it('warns about clock skew when ha lab skew shifts the secondary\'s clock, and passes again at 0', () => {
    const skew = ha(['lab', 'skew', 'secondary', '+10s', '--lab-dir', labDir])
    assert.equal(skew.status, 0, skew.stderr)
    try {
      const r = check()
      assert.equal(r.byId('clock_skew').status, 'warn', JSON.stringify(r.byId('clock_skew')))
      assert.match(r.byId('clock_skew').summary, /secondary is (9|10|11)\.\d+s ahead of primary/)
      assert.equal(r.json!.result.counts.fail, 0)
    } finally {
      assert.equal(ha(['lab', 'skew', 'secondary', '0', '--lab-dir', labDir]).status, 0)
    }

    assert.equal(check().byId('clock_skew').status, 'pass')
    assert.equal(ha(['lab', 'skew', 'secondary', 'soon', '--lab-dir', labDir]).status, 2, 'a bad offset is a usage error')
  })

  it('fails by name when the secondary runs another product version', async () => {
    await labSetVersion('secondary', '2.1.0.1300', {labDir})
    try {
      const r = check()
      assert.equal(r.status, 3)
      assert.equal(r.byId('version').status, 'fail')
      assert.match(r.byId('version').summary, /2\.1\.0\.1234.*2\.1\.0\.1300|2\.1\.0\.1300.*2\.1\.0\.1234/)
      assert.match(r.byId('version').summary, /secondary/)
    } finally {
      await labSetVersion('secondary', '2.1.0.1234', {labDir})
    }
  })

  it('fails when both controllers hold the service IP', async () => {
    await labAddServiceIp('secondary')
    try {
      const r = check()
      assert.equal(r.status, 3)
      const ip = r.byId('service_ip')
      assert.equal(ip.status, 'fail')
      assert.match(ip.summary, /held by both nodes/i)
      assert.deepEqual(ip.evidence.held_by, ['primary', 'secondary'])
    } finally {
      spawnSync('ip', ['-n', labNetns.secondary, 'addr', 'del', labServiceIp, 'dev', 'eth0'])
    }

    assert.equal(check().status, 0, 'healthy again once the secondary drops it')
  })

  it('fails the node by name when its host key changes, and still checks the other', async () => {
    await labRegenerateHostKey('secondary', {labDir})
    const r = check()
    assert.equal(r.status, 3)
    const secondary = r.byId('reachable', 'secondary')
    assert.equal(secondary.status, 'fail')
    assert.match(secondary.summary, /host key .*changed|changed.*host key/i)
    assert.match(JSON.stringify(r.json!.result.nodes.secondary.error), /ssh-keygen -R/)
    assert.equal(r.byId('reachable', 'primary').status, 'pass')
  })
})

import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {after, before, describe, it} from 'node:test'

import {faultKinds, labDown, labNetns, labPaths, labUp} from '../../src/lab/lab.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

// Every `ha lab fault` kind, made from the command line on the standby, must make `ha check` (run
// from the admin side over ssh, as in production) name the check it breaks; --clear undoes it.
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = `/tmp/ha-lab-faults-${process.pid}`
const lab = labPaths(labDir)

function check() {
  const r = ha(['check', '--json', '--config', lab.config], {prefix: ['ip', 'netns', 'exec', labNetns.admin], timeoutMs: 90_000})
  assert.ok(r.json, `ha check printed no JSON: ${r.stdout}${r.stderr}`)
  return {checks: r.json.result.checks as Array<{id: string; node?: string; status: string; summary: string}>, status: r.status}
}

function fault(...args: string[]) {
  const r = ha(['lab', 'fault', ...args, '--lab-dir', labDir, '--json'])
  assert.equal(r.status, 0, `ha lab fault ${args.join(' ')}: ${r.stderr}`)
  return r.json!.result
}

/** The check each fault on the secondary must fail by name, and what its summary says. */
const expected: Record<(typeof faultKinds)[number], {id: string; node?: string; summary: RegExp}> = {
  'etc-full': {id: 'restore_space', node: 'secondary', summary: /only 0 MiB free at \/var\/opt\/sun on secondary/},
  'host-key': {id: 'reachable', node: 'secondary', summary: /host key has changed/i},
  'network-drop': {id: 'reachable', node: 'secondary', summary: /no SSH handshake within connect_timeout/},
  'service-ip': {id: 'service_ip', summary: /held by BOTH nodes/},
  'sshd-hung': {id: 'reachable', node: 'secondary', summary: /no SSH handshake within connect_timeout/},
  'sshd-stopped': {id: 'reachable', node: 'secondary', summary: /connection refused/},
  version: {id: 'version', summary: /primary 2\.1\.0\.1234, secondary 2\.1\.0\.1300/},
  'wrong-device': {id: 'storage', summary: /mounted on BOTH nodes/},
}

describe('ha lab fault: each kind fails ha check by name', {skip}, () => {
  before(async () => {
    await labUp({labDir})
    // A backup, so that no check fails for want of one and restore_space has a size to compare.
    const backup = spawnSync('ip', ['netns', 'exec', labNetns.admin, 'ssh', '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'BatchMode=yes', 'root@198.18.0.2', 'ha backup --quiet'], {encoding: 'utf8', timeout: 60_000})
    assert.equal(backup.status, 0, backup.stderr)
  })
  after(async () => {
    await labDown({labDir})
    spawnSync('rm', ['-rf', labDir])
  })

  it('starts healthy: every check passes', () => {
    const r = check()
    assert.equal(r.status, 0, JSON.stringify(r.checks, null, 1))
  })

  for (const kind of faultKinds) {
    it(`${kind} on the secondary: ${expected[kind].id} fails by name, and --clear makes the pair healthy again`, () => {
      const made = fault('secondary', kind)
      assert.equal(made.kind, kind)
      try {
        const r = check()
        assert.equal(r.status, 3, JSON.stringify(r.checks, null, 1))
        const want = expected[kind]
        const item = r.checks.find((c) => c.id === want.id && (want.node === undefined || c.node === want.node))
        assert.ok(item, `no ${want.id} check: ${JSON.stringify(r.checks)}`)
        assert.equal(item.status, 'fail', JSON.stringify(item))
        assert.match(item.summary, want.summary)
      } finally {
        const cleared = fault('--clear')
        assert.deepEqual(cleared.cleared, [{kind, node: 'secondary'}])
      }

      const healthy = check()
      assert.equal(healthy.status, 0, JSON.stringify(healthy.checks.filter((c) => c.status !== 'pass'), null, 1))
    })
  }

  it('refuses an unknown kind and a fault without a node, changing nothing', () => {
    const unknown = ha(['lab', 'fault', 'secondary', 'meteor', '--lab-dir', labDir])
    assert.equal(unknown.status, 2)
    assert.match(unknown.stderr, /meteor/)
    const bare = ha(['lab', 'fault', '--lab-dir', labDir])
    assert.equal(bare.status, 2)
    assert.match(bare.stderr, /needs a node and a kind, or --clear/)
    assert.equal(check().status, 0)
  })
})

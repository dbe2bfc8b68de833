import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {after, before, describe, it} from 'node:test'

import {faultKinds, labNetns, labPaths} from '../../src/lab/lab.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor, labDone, labReady} from './shared-lab.js'

// Every `ha lab fault` kind, made from the command line on the standby, must make `ha check` (run
// from the admin side over ssh, as in production) exit 3, FAIL the check it breaks by name and print
// its fix under the row; wrong-device and etc-full also on the node holding the storage. --clear
// undoes each.
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('faults')
const lab = labPaths(labDir)

function check() {
  const r = ha(['check', '--json', '--config', lab.config], {prefix: ['ip', 'netns', 'exec', labNetns.admin], timeoutMs: 90_000})
  assert.ok(r.json, `ha check printed no JSON: ${r.stdout}${r.stderr}`)
  return {checks: r.json.result.checks as Array<{actions: string[]; id: string; node?: string; status: string; summary: string; title: string}>, status: r.status}
}

/** The human table as the admin reads it: the FAIL row with this title (and node), and the fixes printed under it. */
function humanRow(title: string, node?: string) {
  const r = ha(['check', '--config', lab.config], {prefix: ['ip', 'netns', 'exec', labNetns.admin], timeoutMs: 90_000})
  const lines = r.stdout.split('\n')
  const i = lines.findIndex((l) => l.includes(`  ${title}  `) && (node === undefined || new RegExp(`  ${title.replaceAll(/[().]/g, '.')}\\s+${node}\\s`).test(l)))
  assert.notEqual(i, -1, `no row "${title}"${node ? ` for ${node}` : ''} in:\n${r.stdout}${r.stderr}`)
  const fixes: string[] = []
  for (let j = i + 1; j < lines.length && /^\s+→ /.test(lines[j]); j++) fixes.push(lines[j].trim().slice(2))
  return {fixes, line: lines[i], status: r.status}
}

/** A fault must make check exit 3, FAIL its row by id and by the title the table shows, and print the fix under it. */
function assertFails(want: {fix: RegExp; id: string; node?: string; summary: RegExp; title: string}) {
  const r = check()
  assert.equal(r.status, 3, JSON.stringify(r.checks, null, 1))
  const item = r.checks.find((c) => c.id === want.id && (want.node === undefined || c.node === want.node))
  assert.ok(item, `no ${want.id} check: ${JSON.stringify(r.checks)}`)
  assert.equal(item.status, 'fail', JSON.stringify(item))
  assert.equal(item.title, want.title)
  assert.match(item.summary, want.summary)
  const human = humanRow(want.title, want.node)
  assert.equal(human.status, 3)
  assert.match(human.line, /^FAIL /)
  assert.match(human.line, want.summary)
  assert.ok(human.fixes.length > 0, `no fix printed under ${human.line}`)
  assert.match(human.fixes.join('\n'), want.fix)
  assert.deepEqual(human.fixes, item.actions, 'the table prints the same fixes --json carries')
}

function fault(...args: string[]) {
  const r = ha(['lab', 'fault', ...args, '--lab-dir', labDir, '--json'])
  assert.equal(r.status, 0, `ha lab fault ${args.join(' ')}: ${r.stderr}`)
  return r.json!.result
}

type Expected = {fix: RegExp; id: string; node?: string; summary: RegExp; title: string}

/** The check each fault on the secondary must fail by name, what its summary says, and its fix. */
const expected: Record<(typeof faultKinds)[number], Expected> = {
  // The node's / holds /etc and /var/tmp, where restore stages: staging is what runs short first.
  'etc-full': {fix: /free space on \/ on secondary \(restore stages/, id: 'restore_space', node: 'secondary', summary: /not enough room on secondary: 0\.0 MiB free on \/ \(staging \/var\/tmp/, title: 'Free space for a restore'},
  'host-key': {fix: /\S/, id: 'reachable', node: 'secondary', summary: /host key has changed/i, title: 'SSH reachability and host key'},
  'network-drop': {fix: /\S/, id: 'reachable', node: 'secondary', summary: /no SSH handshake within connect_timeout/, title: 'SSH reachability and host key'},
  'service-ip': {fix: /remove 198\.18\.0\.100 from the node that must not be active/, id: 'service_ip', summary: /held by BOTH nodes/, title: 'Service IP 198.18.0.100/24'},
  'sshd-hung': {fix: /\S/, id: 'reachable', node: 'secondary', summary: /no SSH handshake within connect_timeout/, title: 'SSH reachability and host key'},
  'sshd-stopped': {fix: /\S/, id: 'reachable', node: 'secondary', summary: /connection refused/, title: 'SSH reachability and host key'},
  version: {fix: /same product version/, id: 'version', summary: /versions differ: primary "2\.1\.0\.1234", secondary "2\.1\.0\.1300"/, title: 'Product version parity'},
  // Another filesystem at data_dir while storage.device names the shared device (issue 9).
  'wrong-device': {
    fix: /unmount what is mounted at \/var\/opt\/sun\/xvm on secondary, or set storage\.device to the shared device/,
    id: 'storage',
    summary: /the wrong filesystem is mounted at data_dir: secondary: \/var\/opt\/sun\/xvm is mounted from \/dev\/sdc, not from storage\.device \/dev\/sdb\b/,
    title: 'Storage (data_dir mounted)',
  },
}

/** The two faults that `ha check` once missed on the node holding the storage. */
const onPrimary: Partial<Record<(typeof faultKinds)[number], Expected>> = {
  // The failover rewrites the holder's /etc/network/interfaces and /etc/fstab as it gives them up.
  'etc-full': {fix: /free space on \/ on primary \(the failover rewrites \/etc\/network\/interfaces and \/etc\/fstab there\)/, id: 'restore_space', node: 'secondary', summary: /primary, which gives up the storage, has 0\.0 MiB free on \/ \(holding \/etc\)/, title: 'Free space for a restore'},
  'wrong-device': {
    fix: /unmount what is mounted at \/var\/opt\/sun\/xvm on primary, or set storage\.device to the shared device/,
    id: 'storage',
    summary: /the wrong filesystem is mounted at data_dir: primary: \/var\/opt\/sun\/xvm is mounted from \/dev\/sdc, not from storage\.device \/dev\/sdb\b/,
    title: 'Storage (data_dir mounted)',
  },
}

describe('ha lab fault: each kind fails ha check by name', {skip}, () => {
  before(async () => {
    await labReady(labDir)
    // A backup, so that no check fails for want of one and restore_space has a size to compare.
    const backup = spawnSync('ip', ['netns', 'exec', labNetns.admin, 'ssh', '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'BatchMode=yes', 'root@198.18.0.2', 'ha backup --quiet'], {encoding: 'utf8', timeout: 60_000})
    assert.equal(backup.status, 0, backup.stderr)
  })
  after(() => labDone(labDir))

  it('starts healthy: every check passes', () => {
    const r = check()
    assert.equal(r.status, 0, JSON.stringify(r.checks, null, 1))
  })

  const cases = [
    ...faultKinds.map((kind) => ({kind, node: 'secondary' as const, want: expected[kind]})),
    ...Object.entries(onPrimary).map(([kind, want]) => ({kind: kind as (typeof faultKinds)[number], node: 'primary' as const, want: want!})),
  ]
  for (const {kind, node, want} of cases) {
    it(`${kind} on the ${node}: ${want.id} fails by name with its fix, and --clear makes the pair healthy again`, () => {
      const made = fault(node, kind)
      assert.equal(made.kind, kind)
      try {
        assertFails(want)
      } finally {
        const cleared = fault('--clear')
        assert.deepEqual(cleared.cleared, [{kind, node}])
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

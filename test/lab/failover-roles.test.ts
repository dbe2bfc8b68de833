import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {runInNode} from '../../src/lab/container.js'
import {labBoot, labHalt, type LabNode, labStatus, nodePaths} from '../../src/lab/lab.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor} from './shared-lab.js'
import {failoverLab} from './failover-helpers.js'

// Roles by the epoch, the stale lock of a fenced node, and the host key after the takeover, in the
// lab's containers (root: / on both), driven from the admin namespace. One lab for the file; each
// test leaves a working pair (which node is active is said at the end of each).
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('failover-roles')
const journalDir = `${labDir}-journal`
const {assertServes, down, haAdmin, heldAddresses, ssh, up} = failoverLab(labDir, journalDir)
const epochFile = '/var/opt/sun/xvm/.ha/epoch.json'

function check() {
  const r = haAdmin(['check', '--json'])
  assert.ok(r.envelope, `ha check printed no JSON: ${r.stdout}${r.stderr}`)
  const row = (id: string, node?: string) => r.envelope!.result.checks.find((c: {id: string; node?: string}) => c.id === id && (node === undefined || c.node === node))
  const failing = () => JSON.stringify(r.envelope!.result.checks.filter((c: {status: string}) => c.status !== 'pass'), null, 1)
  return {...r, failing, row}
}

function inProgress(): unknown {
  return haAdmin(['status', '--json']).envelope?.result?.failover_in_progress
}

/** Every record of the newest failover journal where ha ran. */
function newestJournal(): Array<Record<string, any>> {
  const name = readdirSync(journalDir).filter((n) => n.endsWith('.jsonl')).sort().at(-1)!
  return readFileSync(join(journalDir, name), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
}

/** The node's sshd restarted by its own init script, as an admin does after changing its host keys; back when it listens again. */
async function restartSshd(node: LabNode): Promise<void> {
  await runInNode(labDir, node, ['/etc/init.d/ssh', 'restart'])
  const listens = async () => (await labStatus({labDir})).nodes[node].sshd_running
  for (let i = 0; i < 100 && !(await listens()); i++) await sleep(100)
  assert.ok(await listens(), `${node}'s sshd listens again after its restart`)
}

function fingerprintOf(pubFile: string): string {
  const r = spawnSync('ssh-keygen', ['-lf', pubFile], {encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
  return r.stdout.split(' ')[1]
}

describe('ha failover: roles by the epoch, a fenced node\'s stale lock, the restored host key', {skip}, () => {
  before(up)
  after(down)

  it('a lock the fenced primary left on the storage is stale: --fenced breaks it (ha unlock\'s checks and log), journals it, and the restore runs', async () => {
    // The primary's cron backup ran: a fenced node makes no final backup, the takeover restores this one.
    const backup = ssh('primary', 'ha backup --quiet')
    assert.equal(backup.status, 0, backup.stderr)
    const before = check()
    assert.equal(before.status, 0, before.failing())
    assert.deepEqual(before.envelope!.result.roles, {active: 'primary', epoch: 0, source: 'config', standby: 'secondary'})
    // What a cron ha backup on the primary looks like while it runs: the data directory's lock,
    // held by a live process of that node. The primary then dies with it.
    const plant = [
      "setsid -f sh -c 'exec sleep 600' </dev/null >/dev/null 2>&1",
      'sleep 0.2',
      'pid=$(pgrep -n -x sleep)',
      'ticks=$(cut -d" " -f22 /proc/$pid/stat)',
      '(umask 077; printf \'{"boot_id":"%s","command":"ha backup --quiet --if-attached","host":"%s","machine_id":"%s","node":"primary","pid":%s,"since":"%s","start_ticks":"%s"}\\n\' "$(cat /proc/sys/kernel/random/boot_id)" "$(hostname)" "$(cat /etc/machine-id)" "$pid" "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" "$ticks" >/var/opt/sun/xvm/.ha/ha.lock)',
      'echo $pid',
    ].join('\n')
    const planted = ssh('primary', plant)
    assert.equal(planted.status, 0, planted.stderr)
    const pid = Number(planted.stdout.trim())
    assert.equal(ssh('primary', 'ha backup --quiet').status, 11, 'the lock is held for real')
    await labHalt('primary', {labDir})

    const r = haAdmin(['failover', '--yes', '--fenced', 'primary', '--json'])
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
    assert.ok(r.events.some((e) => e.step === 'restore-takeover' && e.event === 'done'), 'the restore ran')
    const ran = (r.envelope!.result.ran as Array<{action: string; step: string}>).map((a) => a.action)
    assert.ok(ran.includes('ctl-b (secondary)$ ha unlock --held-by primary --yes --json --node secondary'), ran.join('\n'))
    // In the failover journal (where ha ran, and its copy on the storage): whose lock, who broke it, why.
    const broken = newestJournal().find((x) => x.type === 'data' && x.step === 'acquire-storage' && x.data.lock_broken)?.data.lock_broken
    assert.ok(broken, 'the failover journal records the break')
    assert.equal(broken.holder.node, 'primary')
    assert.equal(broken.holder.pid, pid)
    assert.equal(broken.holder.command, 'ha backup --quiet --if-attached')
    assert.match(broken.by, /^root@/)
    assert.equal(broken.on, 'secondary')
    assert.match(broken.why, /primary is confirmed fenced \(flag by root@.*\): the lock it left on the storage is stale/)
    assert.match(broken.holder_status, /primary \(198\.18\.0\.2\) cannot be reached/)
    const mirrored = ssh('secondary', `cat /var/opt/sun/xvm/.ha/failover/${r.envelope!.result.run_id}.jsonl`)
    assert.match(mirrored.stdout, /"lock_broken"/)
    // The same trail ha unlock leaves: its line in .ha/unlock.log on the storage.
    const log = ssh('secondary', 'cat /var/opt/sun/xvm/.ha/unlock.log')
    assert.equal(log.status, 0, log.stderr)
    const line = JSON.parse(log.stdout.trim().split('\n').at(-1)!)
    assert.equal(line.event, 'lock broken')
    assert.equal(line.only_held_by, 'primary')
    assert.equal(line.holder.pid, pid)
    assert.equal(line.by.node, 'secondary')
    assert.equal(broken.unlock_log, '/var/opt/sun/xvm/.ha/unlock.log')
    assert.notEqual(ssh('secondary', 'test -e /var/opt/sun/xvm/.ha/ha.lock').status, 0, 'no lock left')
    assert.equal(ssh('secondary', 'ha backup --quiet').status, 0, 'the new active node backs up: nothing holds the lock')

    // The primary comes back repaired, rejoins as the standby; ha check passes with the roles swapped.
    await labBoot('primary', {labDir})
    const rejoin = haAdmin(['rejoin', 'primary', '--json'])
    assert.equal(rejoin.status, 0, `${rejoin.stdout}\n${rejoin.stderr}`)
    const after = check()
    assert.equal(after.status, 0, after.failing())
    assert.deepEqual(after.envelope!.result.roles, {active: 'secondary', epoch: 1, source: 'storage', standby: 'primary'})
    // The primary announced the service IP when it came back with it in its boot configuration;
    // rejoin's last step announces it again from the active node, so clients reach it unaided.
    assert.ok(rejoin.events.some((e) => e.step === 'announce-active' && e.event === 'done'), 'rejoin announced from the active node')
    assertServes('secondary')
  })

  it('ha check judges by the roles: the standby holding the service IP or a damaged epoch file fails by name; after a failover it passes with the roles swapped', () => {
    // Active: secondary (epoch 1). The address moved to the standby at runtime: the wire disagrees.
    assert.equal(ssh('secondary', 'ip addr del 198.18.0.100/24 dev eth0').status, 0)
    assert.equal(ssh('primary', 'ip addr add 198.18.0.100/24 dev eth0').status, 0)
    try {
      const r = check()
      assert.equal(r.status, 3)
      assert.equal(r.row('service_ip').status, 'fail')
      assert.match(r.row('service_ip').summary, /^198\.18\.0\.100 is held by primary, the standby, but the epoch \(1\) says secondary is active: the roles and the wire disagree$/)
    } finally {
      ssh('primary', 'ip addr del 198.18.0.100/24 dev eth0')
      ssh('secondary', 'ip addr add 198.18.0.100/24 dev eth0 && arping -q -U -c 1 -w 1 -I eth0 -s 198.18.0.100 198.18.0.100')
    }

    // A damaged epoch file on the storage: check names it; ha failover refuses it, nothing changed.
    assert.equal(ssh('secondary', `cp -p ${epochFile} /root/epoch.saved && printf '{"epoch": 1, "active": "secondary"' >${epochFile}`).status, 0)
    try {
      const r = check()
      assert.equal(r.status, 3)
      assert.equal(r.envelope!.result.roles, null)
      assert.equal(r.row('roles').status, 'fail')
      assert.match(r.row('roles').summary, /secondary:\/var\/opt\/sun\/xvm\/\.ha\/epoch\.json is not valid JSON/)
      const refused = haAdmin(['failover', '--yes', '--json'])
      assert.equal(refused.status, 1, `${refused.stdout}\n${refused.stderr}`)
      assert.match(refused.envelope!.error!.message, /secondary:\/var\/opt\/sun\/xvm\/\.ha\/epoch\.json is not valid JSON/)
      assert.equal(inProgress(), null)
      assertServes('secondary')
    } finally {
      ssh('secondary', `cp -p /root/epoch.saved ${epochFile}`)
    }

    const r = check()
    assert.equal(r.status, 0, r.failing())
    const human = haAdmin(['check'])
    assert.equal(human.stdout.split('\n')[0], 'Roles: secondary active, primary standby (epoch 1, from the shared storage)')

    // Fail back: verify (which runs ha check) passed, and check says so with the roles swapped.
    const back = haAdmin(['failover', '--yes', '--json'])
    assert.equal(back.status, 0, `${back.stdout}\n${back.stderr}`)
    const swapped = check()
    assert.equal(swapped.status, 0, swapped.failing())
    assert.deepEqual(swapped.envelope!.result.roles, {active: 'primary', epoch: 2, source: 'storage', standby: 'secondary'})
    assert.match(swapped.row('service_ip').summary, /held by primary only, the active node/)
    assert.match(swapped.row('storage').summary, /mounted on primary only .*, the active node$/)
    assert.ok(swapped.row('restore_space', 'secondary'), 'the restore would land on the standby')
    assertServes('primary')
  })

  it('after the takeover the node must present the primary\'s restored host key: another key is refused (exit 1, named, nothing further done); the right key back, --resume finishes', async () => {
    // Active: primary. Stop the failover right after it asked the secondary to reboot.
    const bootId = () => ssh('secondary', 'cat /proc/sys/kernel/random/boot_id')
    const bootBefore = bootId().stdout.trim()
    assert.ok(bootBefore)
    const killed = haAdmin(['failover', '--yes', '--json'], {HA_FAILOVER_TEST_KILL_IN: 'reboot'})
    assert.equal(killed.signal, 'SIGKILL', `${killed.stdout}\n${killed.stderr}`)
    // Back from that reboot with the restored key (the one ha recorded in known_hosts for its address).
    let after = bootId()
    for (let i = 0; i < 120 && (after.status !== 0 || after.stdout.trim() === bootBefore); i++) {
      await sleep(500)
      after = bootId()
    }

    assert.equal(after.status, 0, `the secondary came back with the restored key: ${after.stderr}`)
    assert.notEqual(after.stdout.trim(), bootBefore, 'it rebooted')
    const etcSsh = join(nodePaths(labDir, 'secondary').root, 'etc/ssh')
    const keyFiles = readdirSync(etcSsh).filter((n) => n.startsWith('ssh_host_'))
    const saved = keyFiles.map((n) => ({content: readFileSync(join(etcSsh, n)), mode: statSync(join(etcSsh, n)).mode & 0o777, name: n}))
    const expected = fingerprintOf(join(etcSsh, 'ssh_host_ed25519_key.pub'))

    // Another machine's key (here: a fresh one) where the primary's should be; sshd reads it when
    // it starts. The node has rebooted already (the takeover's reboot, above): restarting its sshd
    // is enough for it to present the key, with no second reboot.
    const fresh = join(labDir, 'other-host-key')
    rmSync(fresh, {force: true})
    rmSync(`${fresh}.pub`, {force: true})
    assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@elsewhere', '-f', fresh]).status, 0)
    writeFileSync(join(etcSsh, 'ssh_host_ed25519_key'), readFileSync(fresh), {mode: 0o600})
    writeFileSync(join(etcSsh, 'ssh_host_ed25519_key.pub'), readFileSync(`${fresh}.pub`), {mode: 0o644})
    await restartSshd('secondary')
    const presented = fingerprintOf(`${fresh}.pub`)
    assert.notEqual(presented, expected)
    const refused = haAdmin(['failover', '--resume', '--json'])
    assert.equal(refused.status, 1, `${refused.stdout}\n${refused.stderr}`)
    const message = refused.envelope!.error!.message
    assert.ok(message.includes(`secondary (root@198.18.0.3:22) presents host key ${presented}, but after the takeover it must present the key restored from the backup (`), message)
    assert.ok(message.includes(expected), `the expected fingerprint ${expected} is named: ${message}`)
    assert.match(refused.envelope!.error!.actions.join('\n'), /ha failover --resume/)
    assert.ok(!refused.events.some((e) => ['take-ips', 'start-services', 'verify'].includes(e.step)), 'nothing further ran')
    // ha took nothing: no address added or announced, no service started (the node's own boot
    // configuration, restored from the primary, is what it booted with).
    const acted = newestJournal().filter((x) => x.type === 'action' && ['take-ips', 'start-services', 'verify'].includes(x.step))
    assert.deepEqual(acted, [], 'no action of take-ips, start-services or verify in the journal')
    assert.ok(inProgress(), 'the failover is still in progress, to be resumed')

    // The right key back (sshd restarted): --resume finishes.
    for (const f of saved) writeFileSync(join(etcSsh, f.name), f.content, {mode: f.mode})
    for (const n of readdirSync(etcSsh).filter((n) => n.startsWith('ssh_host_') && !keyFiles.includes(n))) rmSync(join(etcSsh, n))
    await restartSshd('secondary')
    const resumed = haAdmin(['failover', '--resume', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    assertServes('secondary')
    assert.ok(heldAddresses('secondary').includes('198.18.0.100'))
    assert.equal(check().status, 0)
  })
})

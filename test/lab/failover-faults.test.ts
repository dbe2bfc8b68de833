import assert from 'node:assert/strict'
import {readdirSync, readFileSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {labBoot, labClearFaults, labDown, labFault, labHalt, labUp} from '../../src/lab/lab.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {failoverLab} from './failover-helpers.js'

// The faults a failover must meet safely, each in the lab's containers (root: / on both), one lab
// for the file: each test leaves the pair as it found it or says what it changed.
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = `/tmp/ha-lab-failover-faults-${process.pid}`
const journalDir = `${labDir}-journal`
const {assertServes, haAdmin, heldAddresses, serviceAnswer, ssh} = failoverLab(labDir, journalDir)

function inProgress(): unknown {
  const status = haAdmin(['status', '--json'])
  return status.envelope?.result?.failover_in_progress
}

describe('ha failover meets faults safely', {skip}, () => {
  before(async () => {
    rmSync(journalDir, {force: true, recursive: true})
    await labUp({labDir})
  })
  after(async () => {
    await labDown({labDir})
    rmSync(labDir, {force: true, recursive: true})
    rmSync(journalDir, {force: true, recursive: true})
  })

  it('storage busy on the active node: aborts naming the process, nothing forced, the primary still serves', () => {
    const holder = ssh('primary', "setsid -f sh -c 'cd /var/opt/sun/xvm/db && exec sleep 300' </dev/null >/dev/null 2>&1; sleep 0.3; pgrep -x -n sleep")
    assert.equal(holder.status, 0, holder.stderr)
    try {
      const r = haAdmin(['failover', '--yes', '--json'])
      assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`)
      assert.match(r.envelope!.error!.message, /busy; nothing was forced/)
      assert.match(r.envelope!.error!.message, /sleep/, 'the holding process is named')
      assert.match(r.envelope!.error!.message, /aborted: ctl-a \(primary\) has its storage, service IPs and services back/)
      assertServes('primary')
      assert.equal(inProgress(), null, 'the aborted run is over')
      assert.equal(ssh('primary', 'mountpoint -q /var/opt/sun/xvm').status, 0, 'the storage stayed mounted (no umount -l/-f)')
    } finally {
      ssh('primary', `kill ${holder.stdout.trim()}`)
    }
  })

  it('service IP that cannot be released from the boot configuration: aborts before the storage moves, the primary still serves', () => {
    assert.equal(ssh('primary', 'chattr +i /etc/network/interfaces').status, 0)
    try {
      const r = haAdmin(['failover', '--yes', '--json'])
      assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`)
      assert.equal(r.events.filter((e) => e.event === 'failed').at(0)?.step, 'release-ips')
      assert.ok(!r.events.some((e) => e.step === 'release-storage'), 'the storage was never touched')
      assert.match(r.envelope!.error!.message, /aborted/)
      assertServes('primary')
      assert.ok(!heldAddresses('secondary').includes('198.18.0.100'))
      assert.equal(inProgress(), null)
    } finally {
      ssh('primary', 'chattr -i /etc/network/interfaces')
    }
  })

  it('active node unreachable but its service IP answering ARP: refused, nothing taken', async () => {
    await labFault('primary', 'network-drop', {labDir})
    try {
      const r = haAdmin(['failover', '--yes', '--fenced', 'primary', '--json'])
      assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`)
      assert.match(r.envelope!.error!.message, /still answers ARP/)
      assert.ok(!heldAddresses('secondary').includes('198.18.0.100'))
      assert.notEqual(ssh('secondary', 'mountpoint -q /var/opt/sun/xvm').status, 0, 'the standby did not take the storage')
      assert.equal(inProgress(), null)
    } finally {
      await labClearFaults({labDir})
    }

    assertServes('primary')
  })

  it('active node unreachable and silent: refused without --fenced (exit 4); with it the takeover proceeds and the journal names who confirmed', async () => {
    await labHalt('primary', {labDir})
    const refused = haAdmin(['failover', '--yes', '--json'])
    assert.equal(refused.status, 4, `${refused.stdout}\n${refused.stderr}`)
    assert.match(refused.envelope!.error!.actions.join(' '), /--fenced primary/)
    assert.ok(!heldAddresses('secondary').includes('198.18.0.100'))
    assert.equal(inProgress(), null)

    const r = haAdmin(['failover', '--yes', '--fenced', 'primary', '--json'])
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
    const answer = serviceAnswer()
    assert.equal(answer.greeting, 'hello from the shared storage')
    assert.equal(answer.hostname, ssh('secondary', 'hostname').stdout.trim())
    assert.ok(heldAddresses('secondary').includes('198.18.0.100'))
    const journal = readFileSync(join(journalDir, readdirSync(journalDir).sort().at(-1)!), 'utf8')
    const fenced = journal.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((x) => x.type === 'fenced')
    assert.equal(fenced.node, 'primary')
    assert.equal(fenced.how, 'flag')
    assert.match(fenced.by, /^root@/)

    // The old primary comes back with the service IP (and the storage) in its boot configuration.
    await labBoot('primary', {labDir})
    const check = haAdmin(['check', '--json'])
    assert.equal(check.status, 3, 'ha check fails with both nodes holding the service IP')
    const failed = check.envelope!.result.checks.filter((c: any) => c.status === 'fail').map((c: any) => c.id)
    assert.ok(failed.includes('service_ip'), failed.join(', '))

    // ha rejoin makes it a proper standby, proving each point; then ha check passes and the
    // failback is the same one command.
    const rejoin = haAdmin(['rejoin', 'primary', '--json'])
    assert.equal(rejoin.status, 0, `${rejoin.stdout}\n${rejoin.stderr}`)
    assert.ok(!heldAddresses('primary').includes('198.18.0.100'))
    assert.doesNotMatch(ssh('primary', 'cat /etc/network/interfaces').stdout, /198\.18\.0\.100/)
    assert.doesNotMatch(ssh('primary', 'cat /etc/fstab').stdout, /\/var\/opt\/sun\/xvm/)
    assert.notEqual(ssh('primary', 'mountpoint -q /var/opt/sun/xvm').status, 0)
    assert.equal(ssh('primary', '/etc/init.d/xvm status').status, 3)
    const checked = haAdmin(['check', '--json'])
    assert.equal(checked.status, 0, JSON.stringify(checked.envelope?.result?.checks?.filter((c: any) => c.status === 'fail')))
    const back = haAdmin(['failover', '--yes', '--json'])
    assert.equal(back.status, 0, `${back.stdout}\n${back.stderr}`)
    assertServes('primary')
  })

  it('--abort before the storage moved puts the active node back as it was', () => {
    const r = haAdmin(['failover', '--yes', '--json'], {HA_FAILOVER_TEST_KILL_IN: 'release-ips'})
    assert.equal(r.signal, 'SIGKILL')
    assert.ok(inProgress())
    const abort = haAdmin(['failover', '--abort', '--json'])
    assert.equal(abort.status, 0, `${abort.stdout}\n${abort.stderr}`)
    assert.equal(abort.envelope!.result.aborted, true)
    assertServes('primary')
    assert.equal(inProgress(), null)
  })

  it('waits for the lock of an ha backup still running on the active node instead of failing on it', () => {
    // What cron's ha backup looks like to anyone else while it runs: the data directory's lock,
    // held by a live process of that node, removed when it ends (here after 4 s).
    const holder = [
      "setsid -f sh -c 'sleep 4; rm -f /var/opt/sun/xvm/.ha/ha.lock' </dev/null >/dev/null 2>&1",
      'sleep 0.2',
      'pid=$(pgrep -n -f "sleep 4; rm")',
      'ticks=$(cut -d" " -f22 /proc/$pid/stat)',
      '(umask 077; printf \'{"boot_id":"%s","command":"ha backup --quiet --if-attached","host":"%s","machine_id":"%s","node":"primary","pid":%s,"since":"%s","start_ticks":"%s"}\\n\' "$(cat /proc/sys/kernel/random/boot_id)" "$(hostname)" "$(cat /etc/machine-id)" "$pid" "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" "$ticks" >/var/opt/sun/xvm/.ha/ha.lock)',
    ].join('\n')
    const held = ssh('primary', holder)
    assert.equal(held.status, 0, held.stderr)
    const busy = ssh('primary', 'ha backup --quiet')
    assert.equal(busy.status, 11, `the lock is held for real: ha backup exits 11 (${busy.stderr})`)
    const r = haAdmin(['failover', '--yes', '--json'])
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
    const backups = (r.envelope!.result.ran as Array<{action: string; step: string}>).filter((a) => a.step === 'final-backup' && /ha backup/.test(a.action))
    assert.ok(backups.length >= 2, `the final backup met the lock and tried again (${backups.length} attempts)`)
    assertServes('secondary')
  })
})

import assert from 'node:assert/strict'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {labBoot, labClearFaults, labFault, labHalt, type LabNode} from '../../src/lab/lab.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor} from './shared-lab.js'
import {failoverLab} from './failover-helpers.js'

// The faults a failover must meet safely, each in the lab's containers (root: / on both), one lab
// for the file: each test leaves the pair as it found it or says what it changed.
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('failover-faults')
const journalDir = `${labDir}-journal`
const {assertServes, down, haAdmin, heldAddresses, serviceAnswer, ssh, up} = failoverLab(labDir, journalDir)

function inProgress(): unknown {
  const status = haAdmin(['status', '--json'])
  return status.envelope?.result?.failover_in_progress
}

describe('ha failover meets faults safely', {skip}, () => {
  before(up)
  after(down)

  it('storage busy on the active node: aborts naming the process, nothing forced, the primary still serves', () => {
    const holder = ssh('primary', "setsid -f sh -c 'cd /var/opt/sun/xvm/db && exec sleep 300' </dev/null >/dev/null 2>&1; sleep 0.3; pgrep -x -n sleep")
    assert.equal(holder.status, 0, holder.stderr)
    try {
      const r = haAdmin(['failover', '--yes', '--json'])
      assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`)
      assert.match(r.envelope!.error!.message, /busy; nothing was forced/)
      assert.match(r.envelope!.error!.message, /sleep/, 'the holding process is named')
      assert.match(r.envelope!.error!.message, /aborted: ctl-a \(primary\) has its storage, service IPs and services back/)
      // The run is over: the advice is a new ha failover once the holders are gone, never --resume or --abort.
      const {actions} = r.envelope!.error!
      assert.ok(actions.some((a) => /^stop the processes above on primary .*then run ha failover again$/.test(a)), JSON.stringify(actions))
      assert.ok(!actions.some((a) => /--resume|--abort/.test(a)), JSON.stringify(actions))
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
    // A dead node makes no final backup: the takeover restores the newest one on the storage.
    assert.equal(ssh('primary', 'ha backup --quiet').status, 0)
    await labHalt('primary', {labDir})
    const refused = haAdmin(['failover', '--yes', '--json'])
    assert.equal(refused.status, 4, `${refused.stdout}\n${refused.stderr}`)
    assert.match(refused.envelope!.error!.actions.join(' '), /--fenced primary/)
    assert.ok(!heldAddresses('secondary').includes('198.18.0.100'))
    assert.equal(inProgress(), null)

    const r = haAdmin(['failover', '--yes', '--fenced', 'primary', '--json'])
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
    assert.ok(r.envelope!.warnings.some((w) => /before you power ctl-a \(primary\) on again, cut it off from the shared storage.*ha rejoin primary/.test(w)), JSON.stringify(r.envelope!.warnings))
    const answer = serviceAnswer()
    assert.equal(answer.greeting, 'hello from the shared storage')
    assert.equal(answer.hostname, ssh('secondary', 'hostname').stdout.trim())
    assert.ok(heldAddresses('secondary').includes('198.18.0.100'))
    const journal = readFileSync(join(journalDir, readdirSync(journalDir).sort().at(-1)!), 'utf8')
    const fenced = journal.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((x) => x.type === 'fenced')
    assert.equal(fenced.node, 'primary')
    assert.equal(fenced.how, 'flag')
    assert.match(fenced.by, /^root@/)
    // The primary died outside a backup: no lock on the storage, so no ha unlock was started for one.
    const ran = (r.envelope!.result.ran as Array<{action: string}>).map((a) => a.action)
    assert.ok(!ran.some((a) => / ha unlock /.test(a)), ran.join('\n'))
    assert.ok(ran.some((a) => /\$ arping -D /.test(a)), `confirm-fenced heard the wire: ${ran.join('\n')}`)

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

  it('ha backups that start after the final backup hold the storage: release-storage waits for each, the one with the lock and the one not yet at it, instead of aborting; the takeover finishes', () => {
    // The run stops (SIGKILL) after release-storage's first look at the storage, still mounted on
    // the primary; an ha backup then starts there as cron's would, and is held (SIGSTOP, the
    // backup's own test hook) once it has the lock and its backups folder open. The resumed
    // failover meets it using the storage; a watcher on the primary lets the backup go on a second
    // after the failover first looks at that process (its `cat /proc/PID/stat`), so the failover
    // is seen waiting however long it took to get there. A second ha backup, as cron's at the same
    // minute would be, holds the storage without the lock (its working directory is the data
    // directory; held at its hook before it asks for the lock) and goes on only once the first
    // has ended: it then takes the lock and backs up, and the failover waits for it too.
    const log = '/var/tmp/ha-late-backup.log'
    const log2 = '/var/tmp/ha-late-backup-2.log'
    const listBackups = (node: LabNode) => JSON.parse(ssh(node, 'ha backup list --json').stdout).result.backups as Array<{id: string; verified: boolean}>
    const before = new Set(listBackups('primary').map((b) => b.id))
    const killed = haAdmin(['failover', '--yes', '--json'], {HA_FAILOVER_TEST_KILL_IN: 'release-storage'})
    assert.equal(killed.signal, 'SIGKILL', `${killed.stdout}\n${killed.stderr}`)
    assert.equal(ssh('primary', 'mountpoint -q /var/opt/sun/xvm').status, 0, 'killed before the umount')
    const started = ssh('primary', [
      `HA_TEST_PAUSE_AT=backup-collected setsid -f ha backup --quiet </dev/null >${log} 2>&1`,
      'for i in $(seq 1 300); do',
      '  pid=$(sed -n \'s/.*"pid":\\([0-9]*\\).*/\\1/p\' /var/opt/sun/xvm/.ha/ha.lock 2>/dev/null)',
      '  if [ -n "$pid" ] && [ "$(cut -d" " -f3 /proc/$pid/stat 2>/dev/null)" = T ]; then echo $pid; exit 0; fi; sleep 0.1',
      'done; exit 1',
    ].join('\n'))
    assert.equal(started.status, 0, `the backup never stopped at its hook: ${started.stderr}${ssh('primary', `cat ${log}`).stdout}`)
    const pid = started.stdout.trim()
    const second = ssh('primary', [
      `cd /var/opt/sun/xvm && HA_TEST_PAUSE_AT=backup-attach-checked setsid -f ha backup --quiet </dev/null >${log2} 2>&1`,
      'for i in $(seq 1 300); do',
      `  for p in $(pgrep -f "run.js backup"); do [ "$p" != ${pid} ] && [ "$(cut -d" " -f3 /proc/$p/stat 2>/dev/null)" = T ] && { echo $p; exit 0; }; done; sleep 0.1`,
      'done; exit 1',
    ].join('\n'))
    assert.equal(second.status, 0, `the second backup never stopped at its hook: ${second.stderr}${ssh('primary', `cat ${log2}`).stdout}`)
    const pid2 = second.stdout.trim()
    try {
      const watcher = [
        `for i in $(seq 1 1200); do pgrep -f "ca[t] /proc/${pid}/stat" >/dev/null && break; sleep 0.05; done; sleep 1; kill -CONT ${pid}`,
        `for i in $(seq 1 1200); do kill -0 ${pid} 2>/dev/null || break; sleep 0.05; done; kill -CONT ${pid2}`,
      ].join('; ')
      assert.equal(ssh('primary', `setsid -f sh -c '${watcher}' </dev/null >/dev/null 2>&1`).status, 0)
      const r = haAdmin(['failover', '--resume', '--yes', '--json'])
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
      const release = (r.envelope!.result.ran as Array<{action: string; step: string}>).filter((a) => a.step === 'release-storage').map((a) => a.action)
      assert.ok(release.filter((a) => /fuser/.test(a)).length >= 2, `asked fuser, waited, asked again: ${JSON.stringify(release)}`)
      assert.ok(release.some((a) => /umount/.test(a)), JSON.stringify(release))
      const step = r.envelope!.result.steps.find((s: {id: string}) => s.id === 'release-storage')
      assert.ok(step.waiting_ms >= 500, `the wait for the backup counts as waiting: ${JSON.stringify(step)}`)
      assert.equal(ssh('primary', `kill -0 ${pid} 2>/dev/null`).status, 1, 'the backup ended by itself')
      assert.equal(ssh('primary', `kill -0 ${pid2} 2>/dev/null`).status, 1, 'the second backup ended by itself')
      assert.equal(ssh('primary', `cat ${log} ${log2}`).stdout, '', 'and both succeeded (--quiet prints nothing then)')
      const made = listBackups('secondary').filter((b) => !before.has(b.id))
      assert.ok(made.length >= 3 && made.every((b) => b.verified), `the final backup's archive and the two late ones, all verified: ${JSON.stringify(made)}`)
      assertServes('secondary')
    } finally {
      ssh('primary', `kill -CONT ${pid} ${pid2} 2>/dev/null; rm -f ${log} ${log2}`)
      // The next test starts from the primary serving, whatever failed above.
      if (haAdmin(['status', '--json']).envelope?.result?.active === 'secondary') haAdmin(['failover', '--yes', '--json'])
    }

    assertServes('primary')
  })

  it('a real ha backup from cron is running when the failover starts: the final backup waits for it, the takeover succeeds, both archives verify', () => {
    // The cron job is the one an admin has (ha backup --quiet --if-attached, root, /etc/ha/ha.yaml),
    // every minute for this test. What makes it last long enough to overlap is the backup's own
    // test hook: it stops (SIGSTOP) holding the lock once it has collected its files, and a
    // watcher on the primary lets it go on once the final backup has met its lock and ended.
    const cronFile = '/etc/cron.d/ha-cron-test'
    // cron mails what a job prints; the lab has no mail: --quiet's one line on failure goes here.
    const cronLog = '/var/tmp/ha-cron-test.log'
    const cronOnce = '/var/tmp/ha-cron-test.once'
    const listBackups = (node: LabNode) => {
      const r = ssh(node, 'ha backup list --json')
      assert.equal(r.status, 0, r.stdout + r.stderr)
      return JSON.parse(r.stdout).result.backups as Array<{created_at: string; id: string; node: string; verified: boolean}>
    }

    let pid = ''
    try {
      const before = new Set(listBackups('primary').map((b) => b.id))
      // One run only: the job removes its marker first. The cron file itself stays until the end:
      // /etc/cron.d is saved state, and a file taken away while cron's backup packs it fails
      // that backup (as it should, naming the file).
      const cron = `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n* * * * * root rm ${cronOnce} 2>/dev/null && HA_TEST_PAUSE_AT=backup-collected ha backup --quiet --if-attached 2>>${cronLog}\n`
      assert.equal(ssh('primary', `touch ${cronOnce} && umask 022 && printf '%s' '${cron}' >${cronFile}`).status, 0)
      // Cron starts it at the next minute: wait (bounded) for the data directory's lock to name
      // ha backup, and that process to be stopped at its hook.
      const waited = ssh('primary', [
        'for i in $(seq 1 900); do',
        '  if grep -q \'"command":"ha backup\' /var/opt/sun/xvm/.ha/ha.lock 2>/dev/null; then',
        `    pid=$(sed 's/.*"pid":\\([0-9]*\\).*/\\1/' /var/opt/sun/xvm/.ha/ha.lock)`,
        '    if [ "$(cut -d" " -f3 /proc/$pid/stat 2>/dev/null)" = T ]; then',
        '      cat /var/opt/sun/xvm/.ha/ha.lock; ppid=$(cut -d" " -f4 /proc/$pid/stat); echo; cat /proc/$(cut -d" " -f4 /proc/$ppid/stat)/comm; exit 0',
        '    fi',
        '  fi; sleep 0.1',
        'done; exit 1',
      ].join('\n'))
      assert.equal(waited.status, 0, `cron never started ha backup within 90 s: ${waited.stderr}${ssh('primary', `cat ${cronLog}`).stdout}`)
      const [lockLine, grandparent = ''] = waited.stdout.split('\n').filter(Boolean)
      const lock = JSON.parse(lockLine)
      pid = String(lock.pid)
      assert.equal(lock.node, 'primary')
      assert.equal(grandparent.trim(), 'cron', `the backup holding the lock was started by cron (cron -> sh -> ha): ${waited.stdout}`)
      // The failover's own ha backup on the primary is another `run.js backup` process: once one
      // has come and gone (it met cron's lock), cron's backup goes on. Bounded: it goes on after a
      // minute whatever happened.
      const watcher = [
        `for i in $(seq 1 1200); do x=$(pgrep -f "[r]un.js backup" | grep -vx ${pid} | head -n 1); [ -n "$x" ] && break; sleep 0.05; done`,
        'for i in $(seq 1 1200); do kill -0 $x 2>/dev/null || break; sleep 0.05; done',
        `kill -CONT ${pid}`,
      ].join('; ')
      assert.equal(ssh('primary', `setsid -f sh -c '${watcher}' </dev/null >/dev/null 2>&1`).status, 0)

      const r = haAdmin(['failover', '--yes', '--json'])
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
      const backups = (r.envelope!.result.ran as Array<{action: string; step: string}>).filter((a) => a.step === 'final-backup' && /ha backup/.test(a.action))
      assert.ok(backups.length >= 2, `the final backup met cron's lock and tried again (${backups.length} attempts; ${JSON.stringify(r.events.filter((e) => e.event !== 'started'))})`)
      assert.equal(ssh('primary', `kill -0 ${pid} 2>/dev/null`).status, 1, 'cron\'s backup has ended')
      assertServes('secondary')

      // Both archives, cron's and the final one, are on the storage and verify on the new active node.
      const cronSaid = ssh('primary', `cat ${cronLog}`).stdout
      assert.equal(cronSaid, '', 'cron\'s ha backup succeeded (--quiet prints nothing then)')
      const made = listBackups('secondary').filter((b) => !before.has(b.id))
      assert.ok(made.length >= 2, `cron's archive and the final one: ${JSON.stringify(made)}; the failover ran ${JSON.stringify(r.envelope!.result.ran.filter((a: {step: string}) => a.step === 'final-backup'))}`)
      for (const b of made) {
        assert.equal(b.verified, true, `${b.id} verifies`)
        const v = ssh('secondary', `ha backup verify ${b.id} --json`)
        assert.equal(v.status, 0, `${b.id}: ${v.stdout}${v.stderr}`)
      }
    } finally {
      ssh('primary', `${pid ? `kill -CONT ${pid} 2>/dev/null; ` : ''}rm -f ${cronFile} ${cronOnce} ${cronLog}`)
    }
  })
})

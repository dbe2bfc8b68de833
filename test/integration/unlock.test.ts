import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {makeControllerRoot} from '../../scripts/controller-root.mjs'
import {exited, ha, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {startSshd} from '../helpers/sshd.js'

/**
 * The lock lives on the shared storage, so a primary that died mid-backup leaves it behind for
 * the secondary. Here the "other host" is node secondary, reached over a real OpenSSH sshd on
 * loopback (this machine, so its processes are the test's own): ha unlock refuses while that
 * host answers that the lock's pid still runs, breaks it once the pid is gone or the host cannot
 * be reached, and journals every break.
 */
const skip = missingPrerequisite(['root', 'sshd'])

const ticksOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
}

test('a lock of another host: named with its reachability, kept while that host still runs it, broken and journalled once it does not', {skip}, async (t) => {
  const dir = tempDir(t, 'ha-unlock-')
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  const sshd = await startSshd({t})
  writeFileSync(join(dir, 'known_hosts'), `${sshd.knownHostsLine}\n`)
  const config = join(dir, 'ha.yaml')
  writeFileSync(
    config,
    `data_dir: /var/opt/sun/xvm
nodes:
  primary:
    hostname: ctl-a
    root: ${root}
  secondary:
    hostname: ctl-b
    ssh:
      host: 127.0.0.1
      port: ${sshd.port}
      identity_file: ${sshd.clientKey}
      known_hosts: ${join(dir, 'known_hosts')}
      connect_timeout: 3s
storage:
  kind: none
`,
  )
  const run = (...args: string[]) => ha([...args, '--config', config, '--node', 'primary'], {timeoutMs: 60_000})
  assert.equal(run('backup').status, 0)
  const state = join(root, 'var/opt/sun/xvm/.ha')
  const lock = join(state, 'ha.lock')
  const journal = join(state, 'unlock.log')
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  // What ctl-b's ha backup wrote when it took the lock: another machine id, its pid.
  const holder = spawn('sleep', ['120'])
  t.after(() => holder.kill('SIGKILL'))
  const plant = (pid: number) =>
    writeFileSync(lock, `${JSON.stringify({boot_id: bootId, command: 'ha backup', host: 'ctl-b', machine_id: randomBytes(16).toString('hex'), node: 'secondary', pid, since: '2026-11-29T03:00:00.000Z', start_ticks: ticksOf(pid)})}\n`, {mode: 0o600})
  plant(holder.pid!)
  const planted = readFileSync(lock)

  const locked = run('backup')
  assert.equal(locked.status, 11, locked.stderr)
  assert.match(locked.stderr, new RegExp(`another host holds ${lock}: "ha backup" on ctl-b \\(node secondary\\), pid ${holder.pid}, since 2026-11-29T03:00:00.000Z`))
  assert.match(locked.stderr, new RegExp(`secondary \\(127\\.0\\.0\\.1\\) answers and pid ${holder.pid} there is still running it`))

  const refused = run('unlock', '--yes')
  assert.equal(refused.status, 11, refused.stderr)
  assert.match(refused.stderr, /still running it; ha unlock refuses/)
  assert.deepEqual(readFileSync(lock), planted, 'the lock is kept while its holder runs')
  assert.ok(!existsSync(journal), 'nothing journalled for a refusal')

  holder.kill('SIGKILL')
  await exited(holder)
  const unconfirmed = run('unlock')
  assert.equal(unconfirmed.status, 4, `no terminal and no --yes: ${unconfirmed.stderr}`)
  assert.match(unconfirmed.stderr, /--yes/)
  assert.deepEqual(readFileSync(lock), planted, 'not confirmed: the lock stays')

  const broken = run('unlock', '--yes', '--json')
  assert.equal(broken.status, 0, broken.stderr)
  assert.equal(broken.json?.result.broken, true)
  assert.match(broken.json?.result.holder_status.summary, new RegExp(`pid ${holder.pid} there is gone`))
  assert.ok(!existsSync(lock), 'lock removed')
  const lines = readFileSync(journal, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  assert.equal(lines.length, 1)
  assert.equal(lines[0].event, 'lock broken')
  assert.equal(lines[0].holder.host, 'ctl-b')
  assert.equal(lines[0].holder.pid, holder.pid)
  assert.equal(lines[0].by.node, 'primary')
  assert.ok(Math.abs(Date.parse(lines[0].at) - Date.now()) < 120_000, 'when it was broken')
  assert.equal(run('backup').status, 0, 'the next backup runs')

  // ctl-b down: say so, and let the operator break it, bounded by the probe's timeout.
  await sshd.stop()
  plant(process.pid)
  const started = Date.now()
  const down = run('backup')
  assert.equal(down.status, 11)
  assert.match(down.stderr, /secondary \(127\.0\.0\.1\) cannot be reached/)
  assert.match(down.stderr, /ha unlock/)
  const gone = run('unlock', '--yes')
  assert.equal(gone.status, 0, gone.stderr)
  assert.ok(Date.now() - started < 60_000, 'bounded')
  assert.ok(!existsSync(lock))
  const last = JSON.parse(readFileSync(journal, 'utf8').trim().split('\n').at(-1)!)
  assert.match(last.holder_status, /cannot be reached/)
})

test('ha unlock on this host: nothing to do without a lock, refuses a live run, breaks a dead one', {skip}, async (t) => {
  const dir = tempDir(t, 'ha-unlock-')
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, `data_dir: /var/opt/sun/xvm\nnodes:\n  primary:\n    hostname: ctl-a\n    root: ${root}\n  secondary:\n    hostname: ctl-b\n    root: /nonexistent\nstorage:\n  kind: none\n`)
  const run = (...args: string[]) => ha([...args, '--config', config, '--node', 'primary'])
  const none = run('unlock', '--json')
  assert.equal(none.status, 0, none.stderr)
  assert.equal(none.json?.result.broken, false)
  assert.equal(run('backup').status, 0)
  const lock = join(root, 'var/opt/sun/xvm/.ha/ha.lock')
  const holder = spawn(process.execPath, ['--import', 'tsx', '-e', `import('./src/lock/lock.js').then(async (m) => { await m.acquireLock(process.argv[1], 'ha backup', {node: 'primary'}); process.stdout.write('held\\n'); setTimeout(() => {}, 120000) })`, lock], {cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit']})
  t.after(() => holder.kill('SIGKILL'))
  await new Promise((resolve) => holder.stdout!.once('data', resolve))
  const live = run('unlock', '--yes')
  assert.equal(live.status, 11)
  assert.match(live.stderr, new RegExp(`pid ${holder.pid} on this host .* which is still running: ha unlock never breaks a live run`))
  holder.kill('SIGKILL')
  await exited(holder)
  assert.ok(existsSync(lock), 'a killed run leaves its lock')
  const r = run('unlock', '--yes', '--json')
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.json?.result.holder.pid, holder.pid)
  assert.ok(!existsSync(lock))
})

test('ha unlock --held-by NODE breaks only that node\'s lock (what ha failover does for the node it confirmed fenced); any other is left alone, exit 0', {skip}, async (t) => {
  const dir = tempDir(t, 'ha-unlock-')
  const root = join(dir, 'secondary')
  makeControllerRoot(root, {hostname: 'ctl-b', uidBase: 1901})
  const config = join(dir, 'ha.yaml')
  // The primary has no ssh block and no root of its own here: asking it is asking this machine.
  writeFileSync(config, `data_dir: /var/opt/sun/xvm\nnodes:\n  primary:\n    hostname: ctl-a\n  secondary:\n    hostname: ctl-b\n    root: ${root}\nstorage:\n  kind: none\n`)
  const run = (...args: string[]) => ha([...args, '--config', config, '--node', 'secondary'])
  assert.equal(run('backup').status, 0, 'a backup made .ha')
  const state = join(root, 'var/opt/sun/xvm/.ha')
  const lock = join(state, 'ha.lock')
  const journal = join(state, 'unlock.log')
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  const dead = spawn('true')
  await exited(dead)
  const plant = (owner: Record<string, unknown>) =>
    writeFileSync(lock, `${JSON.stringify({boot_id: bootId, command: 'ha backup --quiet --if-attached', machine_id: randomBytes(16).toString('hex'), pid: dead.pid, since: '2026-11-29T03:00:00.000Z', start_ticks: '1', ...owner})}\n`, {mode: 0o600})

  // The node taking over's own lock (it carries ctl-a's hostname after a takeover): not the fenced node's.
  plant({host: 'ctl-a', node: 'secondary'})
  const planted = readFileSync(lock)
  const own = run('unlock', '--held-by', 'primary', '--yes', '--json')
  assert.equal(own.status, 0, own.stderr)
  assert.equal(own.json?.result.broken, false)
  assert.match(own.json?.result.left, /held by "ha backup --quiet --if-attached" of ctl-a \(node secondary\), pid \d+, not by primary: left alone/)
  assert.deepEqual(readFileSync(lock), planted, 'kept')
  assert.ok(!existsSync(journal), 'nothing broken, nothing journalled')
  const human = run('unlock', '--held-by', 'primary', '--yes')
  assert.match(human.stdout, new RegExp(`${lock} kept: held by .* not by primary: left alone`))

  // Not a lock ha can read: it names no holder, so it is nobody's to break by --held-by.
  writeFileSync(lock, 'garbage\n', {mode: 0o600})
  const untrusted = run('unlock', '--held-by', 'primary', '--yes', '--json')
  assert.equal(untrusted.status, 0, untrusted.stderr)
  assert.equal(untrusted.json?.result.broken, false)
  assert.match(untrusted.json?.result.left, /names no holder/)
  assert.ok(existsSync(lock))

  // The primary's, its pid gone: broken, and journalled as asked for that node only.
  plant({host: 'ctl-a', node: 'primary'})
  const broken = run('unlock', '--held-by', 'primary', '--yes', '--json')
  assert.equal(broken.status, 0, broken.stderr)
  assert.equal(broken.json?.result.broken, true)
  assert.equal(broken.json?.result.holder.node, 'primary')
  assert.ok(!existsSync(lock))
  const line = JSON.parse(readFileSync(journal, 'utf8').trim().split('\n').at(-1)!)
  assert.equal(line.event, 'lock broken')
  assert.equal(line.only_held_by, 'primary')
  assert.equal(line.holder.node, 'primary')
  assert.equal(line.by.node, 'secondary')
})

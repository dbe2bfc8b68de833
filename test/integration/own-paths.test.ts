import assert from 'node:assert/strict'
import {execFileSync, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {loadConfig} from '../../src/config/load.js'
import {HaError} from '../../src/core/errors.js'
import {writeFileAtomic} from '../../src/fs/atomic.js'
import {acquireLock} from '../../src/lock/lock.js'
import {verifyBackups} from '../../src/backup/verify.js'
import {exited, ha, type HaRun, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * ha's own paths under <data_dir>/.ha are never followed through a symlink, and .ha and its
 * folders are refused (path and fix named) unless real directories owned by root that only root
 * can write — the shared storage is writable by others. Every hostile case fails closed: the
 * canary beside the controller root is unchanged byte for byte, and the run is bounded in time.
 */
const skip = missingPrerequisite(['root'])

async function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t, 'ha-own-paths-')
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  const configPath = join(dir, 'ha.yaml')
  writeFileSync(configPath, controllerConfig({primaryRoot: root}))
  const data = join(root, 'var/opt/sun/xvm')
  const state = join(data, '.ha')
  // What a planted link points at: outside the data directory and outside the root.
  const canary = join(dir, 'canary')
  mkdirSync(canary)
  writeFileSync(join(canary, 'precious'), 'do not touch\n', {mode: 0o644})
  // A restore that would change the host is confirmed with --yes, as a script does: these tests are about what it refuses.
  const confirmed = (args: string[]) => (args[0] === 'restore' && !args.includes('--dry-run') ? [...args, '--yes'] : args)
  const run = (...args: string[]): HaRun => ha([...confirmed(args), '--config', configPath, '--node', 'primary'], {timeoutMs: 30_000})
  const {config} = await loadConfig(configPath)
  return {canary, config, configPath, data, dir, root, run, state}
}

/** Every entry below `dir`: type, mode, owner, content hash or link target. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (rel: string) => {
    const full = rel ? join(dir, rel) : dir
    const st = lstatSync(full)
    const what = st.isSymbolicLink() ? `link:${readlinkSync(full)}` : st.isFile() ? createHash('sha256').update(readFileSync(full)).digest('hex') : st.isDirectory() ? 'dir' : 'other'
    out[rel || '.'] = `${what} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`
    if (st.isDirectory()) for (const name of readdirSync(full).sort()) walk(rel ? `${rel}/${name}` : name)
  }

  walk('')
  return out
}

function assertRefused(r: HaRun, code: number, path: string, pattern: RegExp) {
  assert.equal(r.status, code, `exit ${r.status}: ${r.stderr}`)
  assert.ok(r.stderr.includes(path), `names ${path}: ${r.stderr}`)
  assert.match(r.stderr, pattern)
}

test('a symlinked .ha is refused by every command, naming it and the fix; nothing is written through it', {skip}, async (t) => {
  const {canary, run, state} = await setup(t)
  symlinkSync(canary, state)
  const before = tree(canary)
  for (const args of [['backup'], ['backup', 'verify'], ['backup', 'list'], ['restore', '--dry-run'], ['restore'], ['restore', '--undo'], ['restore', '--resume'], ['unlock', '--yes']]) {
    const r = run(...args)
    assert.notEqual(r.status, 0, `${args.join(' ')} must fail: ${r.stdout}`)
    assert.ok(r.stderr.includes(`${state} is a symlink`), `${args.join(' ')} names the link: ${r.stderr}`)
    assert.match(r.stderr, /rm .*\.ha/, 'says how to fix it')
  }

  assert.deepEqual(tree(canary), before, 'the canary folder is unchanged')
  assert.equal(readlinkSync(state), canary, 'the planted link itself is left for the admin to look at')
})

test('a symlinked .ha/backups, .ha/undo or .ha/staging is refused, never followed', {skip}, async (t) => {
  const {canary, run, state} = await setup(t)
  assert.equal(run('backup').status, 0)
  const before = tree(canary)
  const backups = join(state, 'backups')
  renameSync(backups, join(state, 'backups.real'))
  symlinkSync(canary, backups)
  for (const args of [['backup'], ['backup', 'verify'], ['backup', 'list'], ['restore', '--dry-run']]) {
    assertRefused(run(...args), 1, `${backups} is a symlink`, /ha refuses to use it/)
    assert.ok(!existsSync(join(state, 'ha.lock')), `${args.join(' ')}: the lock is released on the way out`)
  }

  // The folder itself, swapped back; now undo and staging as links.
  execFileSync('rm', [backups])
  renameSync(join(state, 'backups.real'), backups)
  const undo = join(state, 'undo')
  symlinkSync(canary, undo)
  for (const args of [['restore'], ['restore', '--undo'], ['restore', '--resume'], ['restore', '--dry-run']]) {
    assertRefused(run(...args), 1, `${undo} is a symlink`, /ha refuses to use it/)
    assert.ok(!existsSync(join(state, 'ha.lock')), `${args.join(' ')}: the lock is released on the way out`)
  }

  // Without a /var/tmp under the root, staging goes to .ha/staging: a link there is refused too.
  execFileSync('rm', [undo])
  const staging = join(state, 'staging')
  symlinkSync(canary, staging)
  for (const args of [['restore'], ['restore', '--dry-run']]) assertRefused(run(...args), 1, `${staging} is a symlink`, /ha refuses to use it/)
  assert.deepEqual(tree(canary), before, 'the canary folder is unchanged')
})

test('a .ha that is group-writable, world-writable or owned by another uid is refused (StrictModes)', {skip}, async (t) => {
  const {canary, run, state} = await setup(t)
  assert.equal(run('backup').status, 0)
  const before = tree(canary)
  const cases: Array<[string, () => void, RegExp]> = [
    ['group-writable', () => chmodSync(state, 0o770), /writable by its group \(mode 0770\)/],
    ['world-writable', () => chmodSync(state, 0o707), /writable by others \(mode 0707\)/],
    ['owned by uid 4242', () => chownSync(state, 4242, 0), /owned by uid 4242, not by root/],
  ]
  for (const [what, make, pattern] of cases) {
    chmodSync(state, 0o700)
    chownSync(state, 0, 0)
    make()
    const inside = tree(state)
    for (const args of [['backup'], ['backup', 'verify'], ['backup', 'list'], ['restore', '--dry-run'], ['restore', '--undo']]) {
      const r = run(...args)
      assertRefused(r, 1, state, pattern)
      assert.match(r.stderr, new RegExp(`chown root:root ${state} && chmod 700 ${state}`), `${what}: gives the fix`)
    }

    assert.deepEqual(tree(state), inside, `${what}: nothing inside .ha changed`)
  }

  // The same rule for a folder inside it.
  chmodSync(state, 0o700)
  chownSync(state, 0, 0)
  chmodSync(join(state, 'backups'), 0o775)
  assertRefused(run('backup'), 1, join(state, 'backups'), /writable by its group/)
  assert.deepEqual(tree(canary), before)
})

test('a symlink planted at the temp name of the verification record, the lock or a journal fails closed, naming it', {skip}, async (t) => {
  const {canary, config, run, state} = await setup(t)
  assert.equal(run('backup').status, 0)
  const before = tree(canary)
  const target = join(canary, 'precious')
  const backups = join(state, 'backups')
  const [archive] = readdirSync(backups).filter((n) => n.endsWith('.tar.gz'))
  const id = archive.replace('.tar.gz', '')
  const node = {config: config.nodes.primary, name: 'primary' as const}

  // The record ha backup verify writes (the original report): temp name of this process.
  const recordTemp = join(backups, `.${id}.verify.json.tmp-${process.pid}`)
  symlinkSync(target, recordTemp)
  await assert.rejects(verifyBackups(config, node, id), (error: HaError) => error.message.includes(`${recordTemp} already exists`))
  assert.equal(readlinkSync(recordTemp), target, 'the planted link is neither followed nor removed')
  execFileSync('rm', [recordTemp])
  // A dangling link at the same name: O_EXCL refuses it too (it would create the target).
  symlinkSync(join(canary, 'new-file'), recordTemp)
  await assert.rejects(verifyBackups(config, node, id), (error: HaError) => error.message.includes(recordTemp))
  assert.ok(!existsSync(join(canary, 'new-file')), 'no file created at the link target')
  execFileSync('rm', [recordTemp])

  // The lock's temp file.
  const lockTemp = join(state, `.ha.lock.tmp-${process.pid}`)
  symlinkSync(target, lockTemp)
  await assert.rejects(acquireLock(join(state, 'ha.lock'), 'test'), (error: HaError) => error.message.includes(lockTemp))
  assert.ok(!existsSync(join(state, 'ha.lock')), 'no lock taken')
  execFileSync('rm', [lockTemp])

  // Any file ha writes atomically (undo journals, records): the temp beside it.
  const journal = join(state, 'journal.json')
  symlinkSync(target, join(state, `.journal.json.tmp-${process.pid}`))
  await assert.rejects(writeFileAtomic(journal, 'x'), (error: HaError) => error.message.includes(`.journal.json.tmp-${process.pid} already exists`))
  assert.ok(!existsSync(journal))

  // The unlock log.
  symlinkSync(target, join(state, 'unlock.log'))
  writeFileSync(join(state, 'ha.lock'), 'garbage')
  const r = run('unlock', '--yes')
  assert.equal(r.status, 1, r.stderr)
  assert.match(r.stderr, /unlock\.log: it is a symlink/)

  assert.deepEqual(tree(canary), before, 'the canary folder is unchanged')
})

test('a planted lock that is a symlink, a FIFO, huge or garbage is refused with exit 11 and removed only by ha unlock', {skip}, async (t) => {
  const {canary, run, state} = await setup(t)
  assert.equal(run('backup').status, 0)
  const lock = join(state, 'ha.lock')
  const before = tree(canary)
  const cases: Array<[string, () => void, RegExp]> = [
    ['a symlink', () => symlinkSync(join(canary, 'precious'), lock), /is a symlink/],
    ['a FIFO', () => execFileSync('mkfifo', ['-m', '600', lock]), /is a FIFO, not a regular file/],
    ['huge', () => writeFileSync(lock, Buffer.alloc(8 * 1024 * 1024, '{')), /is 8388608 bytes, more than the 4096/],
    ['garbage', () => writeFileSync(lock, '\u0000\u00ff not json'), /is not a JSON lock record/],
    ['well-formed JSON but not a lock', () => writeFileSync(lock, JSON.stringify({boot_id: 'x', command: 'ha backup', host: 'a b;rm', pid: 1, since: 'now', start_ticks: '1'})), /has an invalid "host"/],
    ['a directory', () => mkdirSync(lock), /is a directory, not a regular file/],
  ]
  for (const [what, plant, pattern] of cases) {
    plant()
    const started = Date.now()
    for (const args of [['backup'], ['backup', 'verify'], ['restore']]) {
      const r = run(...args)
      assertRefused(r, 11, lock, pattern)
      assert.match(r.stderr, /ha unlock/, `${what}: says what to do`)
    }

    assert.ok(Date.now() - started < 60_000, `${what}: bounded`)
    const u = run('unlock', '--yes', '--json')
    assert.equal(u.status, 0, `${what}: ${u.stderr}`)
    assert.equal(u.json?.result.broken, true)
    assert.match(u.json?.result.untrusted, pattern)
    assert.ok(!existsSync(lock), `${what}: removed by ha unlock`)
    const log = readFileSync(join(state, 'unlock.log'), 'utf8').trim().split('\n')
    assert.match(JSON.parse(log.at(-1)!).untrusted, pattern, `${what}: journalled`)
  }

  assert.deepEqual(tree(canary), before, 'the canary (a link target) is unchanged')
  assert.equal(run('backup').status, 0, 'after unlock, a backup runs again')
})

test('while ha restore holds the lock, every writer exits 11 and the read-only commands still run', {skip}, async (t) => {
  const {data, run, state} = await setup(t)
  assert.equal(run('backup').status, 0)
  const lock = join(state, 'ha.lock')
  // A real process holding the lock the way ha restore takes it.
  const holder = spawn(process.execPath, ['--import', 'tsx', '-e', `import('./src/lock/lock.js').then(async (m) => { await m.acquireLock(process.argv[1], 'ha restore', {node: 'primary'}); process.stdout.write('held\\n'); setTimeout(() => {}, 120000) })`, lock], {cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit']})
  t.after(() => holder.kill('SIGKILL'))
  await new Promise((resolve) => holder.stdout!.once('data', resolve))
  const before = tree(data)
  for (const args of [['backup'], ['backup', 'verify'], ['restore'], ['restore', '--undo'], ['restore', '--resume'], ['unlock', '--yes']]) {
    const r = run(...args)
    assert.equal(r.status, 11, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, new RegExp(`"ha restore".*pid ${holder.pid}`), `${args.join(' ')} names the holder`)
  }

  assert.deepEqual(tree(data), before, 'nothing in the data directory changed, the lock included')
  const list = run('backup', 'list', '--json')
  assert.equal(list.status, 0, list.stderr)
  assert.equal(list.json?.result.backups.length, 1)
  const dry = run('restore', '--dry-run', '--json')
  assert.notEqual(dry.status, 11, `a dry run takes no lock: ${dry.stderr}`)

  holder.kill('SIGKILL')
  await exited(holder)
  assert.equal(run('backup').status, 0, 'the dead holder\'s lock on this host is taken over')
})

import assert from 'node:assert/strict'
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'
import {gunzipSync, gzipSync} from 'node:zlib'

import {archives, backupsDir, setup, sha256, snapshot} from '../helpers/backup-fixture.js'
import {exited, ha, haSpawn, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

test('a backup is a gzip tar that GNU tar lists and extracts, with a manifest of ids, names and hashes', (t) => {
  const {root, run} = setup(t)
  const r = run('backup', '--json')
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.json?.status, 0)
  const [name] = archives(root)
  const file = join(backupsDir(root), name)
  assert.equal(statSync(file).mode & 0o777, 0o600, 'archive readable by root only')
  assert.equal(statSync(backupsDir(root)).mode & 0o777, 0o700)

  const listing = execFileSync('tar', ['-tzvf', file], {encoding: 'utf8'}).trim().split('\n')
  assert.match(listing[0], / manifest\.json$/, 'manifest is the first member')
  assert.ok(listing.some((l) => l.endsWith(' files/etc/passwd')))
  assert.ok(listing.some((l) => l.endsWith(' files/etc/ssh/ssh_host_ed25519_key')))
  assert.ok(!listing.some((l) => /machine-id|hostid/.test(l)), 'never /etc/hostid or /etc/machine-id')

  const out = tempDir(t)
  execFileSync('tar', ['-xzf', file, '-C', out])
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))
  assert.equal(statSync(join(out, 'manifest.json')).mode & 0o777, 0o600)
  assert.equal(manifest.host.hostname, 'ctl-a')
  assert.equal(manifest.product_version, '2.1.0.1234')
  assert.match(manifest.ha_version, /^\d+\.\d+\.\d+/)
  assert.match(manifest.host.boot_id, /^[0-9a-f-]{36}$/)
  assert.ok(!Number.isNaN(Date.parse(manifest.created_at)))
  const satellite = manifest.entries.find((e: {path: string}) => e.path === '/etc/opt/sun/xvm/satellite.conf')
  assert.equal(satellite.sha256, sha256(readFileSync(join(root, 'etc/opt/sun/xvm/satellite.conf'))))
  assert.equal(satellite.type, 'file')
  assert.equal(satellite.mode, '0644')
  if (process.getuid?.() === 0) assert.deepEqual([satellite.uid, satellite.user, satellite.gid, satellite.group], [901, 'xvm', 901, 'xvm'])
  // The extracted copy is byte-for-byte the source.
  assert.deepEqual(readFileSync(join(out, 'files/etc/passwd')), readFileSync(join(root, 'etc/passwd')))
  const link = manifest.entries.find((e: {type: string}) => e.type === 'symlink')
  assert.equal(link.target, '/usr/share/zoneinfo/UTC')
  assert.equal(r.json?.result.id, manifest.id)
})

test('a missing optional entry is recorded and exits 3; --quiet is silent on success and one stderr line otherwise', (t) => {
  const {root, run} = setup(t, {include: ['/etc/opt/site/license.key']})
  const partial = run('backup', '--quiet')
  assert.equal(partial.status, 3)
  assert.equal(partial.stdout, '')
  assert.equal(partial.stderr.trim().split('\n').length, 1)
  assert.match(partial.stderr, /license\.key/)
  const file = join(backupsDir(root), archives(root)[0])
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', file, 'manifest.json'], {encoding: 'utf8'}))
  assert.deepEqual(manifest.missing, [{path: '/etc/opt/site/license.key', required: false, role: 'state'}])

  mkdirSync(join(root, 'etc/opt/site'), {recursive: true})
  writeFileSync(join(root, 'etc/opt/site/license.key'), 'key')
  const quiet = run('backup', '--quiet')
  assert.equal(quiet.status, 0)
  assert.equal(quiet.stdout + quiet.stderr, '', 'nothing at all on success')
})

test('a missing required file fails naming it, and writes no archive', (t) => {
  const {root, run} = setup(t)
  assert.equal(run('backup').status, 0)
  const before = snapshot(backupsDir(root))
  rmSync(join(root, 'etc/passwd'))
  const r = run('backup')
  assert.equal(r.status, 1)
  assert.match(r.stderr, new RegExp(`required file ${root}/etc/passwd is missing`))
  assert.deepEqual(snapshot(backupsDir(root)), before)
})

test('an unreadable required file fails naming it (root without DAC override), changing nothing', (t) => {
  const skip = missingPrerequisite(['root'])
  if (skip) return t.skip(skip)
  const {config, root, run} = setup(t)
  assert.equal(run('backup').status, 0, 'the first run creates the root-owned state directory')
  chmodSync(join(root, 'etc/hosts'), 0)
  const before = snapshot(join(root, 'var/opt/sun/xvm'))
  // Root reads every file; dropping CAP_DAC_OVERRIDE makes modes bite, as for a real EACCES or EIO.
  const r = ha(['backup', '--config', config, '--node', 'primary'], {
    prefix: ['setpriv', '--inh-caps=-all', '--bounding-set=-dac_override,-dac_read_search'],
  })
  assert.equal(r.status, 1, r.stderr)
  assert.match(r.stderr, new RegExp(`cannot read ${root}/etc/hosts: EACCES`))
  assert.deepEqual(snapshot(join(root, 'var/opt/sun/xvm')), before)
})

test('bad configuration exits 2 naming the file, line and field, and changes nothing', (t) => {
  const {config, dir, root} = setup(t)
  const before = snapshot(root)
  const cases: Array<[string, RegExp]> = [
    ['data_dir: /var/opt/sun/xvm\nnodes: [', /ha\.yaml:\d+: not valid YAML/],
    [readFileSync(config, 'utf8').replace('backup:', 'backupp:'), /ha\.yaml:\d+: backupp: unknown key "backupp"/],
    [readFileSync(config, 'utf8').replace('keep: 24', 'keep: many'), /ha\.yaml:\d+: backup\.keep: must be number, not string/],
    [readFileSync(config, 'utf8').replace('data_dir: /var/opt/sun/xvm\n', ''), /ha\.yaml:1: data_dir: is required but missing/],
    [readFileSync(config, 'utf8').replace('keep: 24', 'keep: 24\n  include: [/etc/machine-id]'), /backup\.include\.0: names a machine identity file/],
  ]
  for (const [text, expected] of cases) {
    const bad = join(dir, 'ha.yaml')
    writeFileSync(bad, text)
    const r = ha(['backup', '--config', bad, '--node', 'primary', '--json'])
    assert.equal(r.status, 2, `${expected}: ${r.stdout}${r.stderr}`)
    assert.equal(r.json?.status, 2)
    assert.match(r.json!.error!.message, expected)
    assert.ok(r.json!.error!.actions.length > 0, 'says what to do')
  }

  const line = readFileSync(config, 'utf8').replace('backup:', 'backupp:').split('\n').findIndex((l) => l.startsWith('backupp')) + 1
  writeFileSync(config, readFileSync(config, 'utf8').replace('backup:', 'backupp:'))
  assert.match(ha(['backup', '--config', config, '--node', 'primary']).stderr, new RegExp(`ha\\.yaml:${line}: backupp`))
  const missing = ha(['backup', '--config', join(dir, 'nope.yaml')])
  assert.equal(missing.status, 2)
  assert.match(missing.stderr, /cannot read config .*nope\.yaml: ENOENT/)
  assert.match(ha(['backup'], {env: {HA_CONFIG: join(dir, 'from-env.yaml')}}).stderr, /from-env\.yaml/, 'HA_CONFIG is used')
  assert.deepEqual(snapshot(root), before)
})

test('a data directory that is missing or not a directory is named, and nothing is created', (t) => {
  const {root, run} = setup(t)
  rmSync(join(root, 'var/opt/sun/xvm'), {recursive: true})
  const gone = run('backup')
  assert.equal(gone.status, 1)
  assert.match(gone.stderr, /data directory .*\/var\/opt\/sun\/xvm is not there/)
  assert.ok(!existsSync(join(root, 'var/opt/sun/xvm')))
  writeFileSync(join(root, 'var/opt/sun/xvm'), 'not a dir')
  const file = run('backup')
  assert.equal(file.status, 1)
  assert.match(file.stderr, /is not a directory/)
})

test('a full disk fails the run with ENOSPC, keeps the earlier archives and leaves no partial one', (t) => {
  const skip = missingPrerequisite(['root'])
  if (skip) return t.skip(skip)
  // A big incompressible file makes the archive larger than the 1 MiB filesystem.
  const {root, run} = setup(t, {storage: {kind: 'mount'}})
  const data = join(root, 'var/opt/sun/xvm')
  rmSync(data, {recursive: true})
  mkdirSync(data)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'ha-test-full', data])
  // Unmounted here rather than in t.after: the temp dir's removal is registered first and runs first.
  try {
    assert.equal(run('backup').status, 0, 'a small backup fits')
    const before = snapshot(data)
    writeFileSync(join(root, 'etc/opt/sun/xvm/big.bin'), randomBytes(3_000_000))
    const r = run('backup')
    assert.equal(r.status, 1)
    assert.match(r.stderr, /ENOSPC/)
    assert.match(r.stderr, /nothing was pruned/)
    assert.deepEqual(snapshot(data), before, 'earlier archive intact, no partial file, lock released')
  } finally {
    spawnSync('umount', [data])
  }
})

test('refuses to back up on the node where the storage is not mounted; --if-attached makes that a silent success', (t) => {
  const {root, run} = setup(t, {storage: {kind: 'mount'}})
  const data = join(root, 'var/opt/sun/xvm')
  const before = snapshot(data)
  const standby = run('backup')
  assert.equal(standby.status, 1)
  assert.match(standby.stderr, new RegExp(`nothing is mounted at ${data} on this node; refusing to back up into the bare mountpoint`))
  assert.match(standby.stderr, /--if-attached/)
  const cron = run('backup', '--quiet', '--if-attached')
  assert.equal(cron.status, 0)
  assert.equal(cron.stdout + cron.stderr, '', 'the standby\'s cron stays silent')
  assert.deepEqual(snapshot(data), before, 'nothing written into the bare mountpoint')

  const skip = missingPrerequisite(['root'])
  if (skip) return t.skip(skip)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'ha-test-shared', data])
  try {
    const active = run('backup', '--if-attached', '--json')
    assert.equal(active.status, 0, active.stderr)
    assert.equal(active.json?.result.status, 'ok')
    assert.equal(archives(root).length, 1)
  } finally {
    spawnSync('umount', [data])
  }
})

test('the storage leaving between the attach check and the lock (a failover\'s umount as cron starts a backup): --if-attached stays silent, nothing is written into the bare mountpoint', async (t) => {
  const skip = missingPrerequisite(['root'])
  if (skip) return t.skip(skip)
  const {config, root} = setup(t, {storage: {kind: 'mount'}})
  const data = join(root, 'var/opt/sun/xvm')
  const bare = snapshot(data)
  for (const flags of [['--quiet', '--if-attached'], ['--json']]) {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'ha-test-leaving', data])
    let mounted = true
    try {
      // The run stops itself right after its attach check; the storage leaves; it goes on.
      const child = haSpawn(['backup', ...flags, '--config', config, '--node', 'primary'], {HA_TEST_PAUSE_AT: 'backup-attach-checked'})
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      child.stderr.on('data', (d) => (out += d))
      for (let i = 0; i < 600 && !/^\S+ \(.*\) T /.test(readFileSync(`/proc/${child.pid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 50))
      assert.match(readFileSync(`/proc/${child.pid}/stat`, 'utf8'), /\) T /, 'the run stopped at its hook')
      execFileSync('umount', [data])
      mounted = false
      child.kill('SIGCONT')
      const code = await exited(child)
      if (flags.includes('--if-attached')) {
        assert.equal(code, 0, out)
        assert.equal(out, '', 'cron hears nothing')
      } else {
        assert.equal(code, 1, out)
        assert.match(out, /the storage left this node as the backup started/)
        assert.match(out, /ha status/)
      }

      assert.deepEqual(snapshot(data), bare, 'nothing left on the node\'s own disk: no archive, lock or folder')
    } finally {
      if (mounted) spawnSync('umount', [data])
    }
  }
})

test('a saved file that goes away after it was listed (an admin editing /etc/cron.d mid-run): the error names that file, not the archive; nothing is left', async (t) => {
  const {config, root} = setup(t, {include: ['/etc/opt/site']})
  mkdirSync(join(root, 'etc/opt/site'), {recursive: true})
  writeFileSync(join(root, 'etc/opt/site/small.conf'), 'a=1\n')
  writeFileSync(join(root, 'etc/opt/site/big.bin'), randomBytes(9 * 1024 * 1024))
  for (const gone of ['small.conf', 'big.bin']) {
    writeFileSync(join(root, 'etc/opt/site', gone), gone === 'big.bin' ? randomBytes(9 * 1024 * 1024) : 'a=1\n')
    const before = snapshot(backupsDir(root))
    // The run stops itself once it has listed what to save; the file goes; it goes on.
    const child = haSpawn(['backup', '--config', config, '--node', 'primary'], {HA_TEST_PAUSE_AT: 'backup-collected'})
    let err = ''
    child.stdout.resume()
    child.stderr.on('data', (d) => (err += d))
    for (let i = 0; i < 600 && !/^\S+ \(.*\) T /.test(readFileSync(`/proc/${child.pid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 50))
    rmSync(join(root, 'etc/opt/site', gone))
    child.kill('SIGCONT')
    assert.equal(await exited(child), 1, err)
    assert.match(err, new RegExp(`/etc/opt/site/${gone.replace('.', '\\.')} changed or went away while it was being saved`), `${gone} (${gone === 'big.bin' ? 'read in parts' : 'packed whole'})`)
    assert.doesNotMatch(err, /cannot write/)
    assert.deepEqual(snapshot(backupsDir(root)), before, 'no archive and no temp file; the lock released')
  }
})

test('refuses when another filesystem than storage.device is mounted at data_dir', (t) => {
  const skip = missingPrerequisite(['root'])
  if (skip) return t.skip(skip)
  const {root, run} = setup(t, {storage: {device: '/dev/zero', kind: 'mount'}})
  const data = join(root, 'var/opt/sun/xvm')
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'ha-test-other', data])
  try {
    const r = run('backup')
    assert.equal(r.status, 1)
    assert.match(r.stderr, /is mounted from ha-test-other, not from storage\.device \/dev\/zero/)
    assert.deepEqual(readdirSync(data), [], 'nothing written')
  } finally {
    spawnSync('umount', [data])
  }
})

test('a second concurrent run exits 11 at once touching nothing; a lock left by a dead run does not block', async (t) => {
  const {root, run} = setup(t)
  assert.equal(run('backup').status, 0)
  const lock = join(root, 'var/opt/sun/xvm/.ha/ha.lock')
  // A live holder: a real process, identified the way ha identifies its own runs.
  const holder = spawn('sleep', ['60'])
  t.after(() => holder.kill('SIGKILL'))
  const stat = readFileSync(`/proc/${holder.pid}/stat`, 'utf8')
  const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  const owner = {boot_id: bootId, command: 'ha backup', host: execFileSync('hostname', {encoding: 'utf8'}).trim(), pid: holder.pid, since: new Date().toISOString(), start_ticks: ticks}
  writeFileSync(lock, JSON.stringify(owner))
  const before = snapshot(join(root, 'var/opt/sun/xvm'))
  const started = Date.now()
  const locked = run('backup', '--json')
  assert.equal(locked.status, 11)
  assert.match(locked.json!.error!.message, new RegExp(`pid ${holder.pid}`))
  assert.ok(Date.now() - started < 10_000, 'exits at once rather than waiting')
  assert.deepEqual(snapshot(join(root, 'var/opt/sun/xvm')), before)

  holder.kill('SIGKILL')
  await exited(holder)
  const after = run('backup')
  assert.equal(after.status, 0, `stale lock is taken over: ${after.stderr}`)
  assert.equal(archives(root).length, 2)
  assert.ok(!existsSync(lock), 'lock released')

  // Two real runs at once: exactly one of them gets the lock, the other exits 11.
  const runs = [haSpawn(['backup', '--config', join(root, '../ha.yaml'), '--node', 'primary']), haSpawn(['backup', '--config', join(root, '../ha.yaml'), '--node', 'primary'])]
  const codes = await Promise.all(runs.map((p) => exited(p)))
  assert.ok(codes.includes(0), `codes ${codes}`)
  assert.ok(codes.every((c) => c === 0 || c === 11), `codes ${codes}`)
})

test('a run killed at any moment leaves earlier archives intact and no partial archive under a final name', async (t) => {
  const {config, root, run} = setup(t, {root: {bulkBytes: 20_000_000, bulkFiles: 400}})
  assert.equal(run('backup').status, 0)
  const first = archives(root)
  const delays = [30, 80, 150, 250, 400, 600, 900]
  for (const delay of delays) {
    const child = haSpawn(['backup', '--config', config, '--node', 'primary'])
    await new Promise((resolve) => setTimeout(resolve, delay))
    child.kill('SIGKILL')
    await exited(child)
    for (const name of archives(root)) {
      const v = run('backup', 'verify', name.replace('.tar.gz', ''))
      assert.equal(v.status, 0, `after a kill at ${delay} ms, ${name} must verify: ${v.stdout}`)
    }

    assert.ok(first.every((n) => archives(root).includes(n)), 'the earlier archive is still there')
  }

  const next = run('backup', '--json')
  assert.equal(next.status, 0, next.stderr)
  assert.ok(!readdirSync(backupsDir(root)).some((n) => n.startsWith('.tmp-')), 'leftovers cleaned by the next run')
})

test('Ctrl-C stops the run with exit 130, removes the partial archive and releases the lock', async (t) => {
  const {config, root, run} = setup(t, {root: {bulkBytes: 30_000_000, bulkFiles: 300}})
  assert.equal(run('backup').status, 0)
  const before = archives(root)
  const child = haSpawn(['backup', '--config', config, '--node', 'primary'])
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  // Interrupt once it is writing, as an operator would after seeing the progress line.
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (child.exitCode !== null || /writing/.test(stderr) || readdirSync(backupsDir(root)).some((n) => n.startsWith('.tmp-'))) {
        clearInterval(poll)
        resolve()
      }
    }, 5)
  })
  child.kill('SIGINT')
  const code = await exited(child)
  assert.equal(code, 130, stderr)
  assert.match(stderr, /interrupted/)
  assert.deepEqual(archives(root), before)
  assert.ok(!readdirSync(backupsDir(root)).some((n) => n.startsWith('.tmp-')), 'no partial archive left')
  assert.ok(!existsSync(join(root, 'var/opt/sun/xvm/.ha/ha.lock')), 'lock released')
})

test('retention keeps the newest N by the archives own sequence, not file times, and prunes only after verifying', (t) => {
  const {root, run} = setup(t, {keep: 2})
  for (let i = 0; i < 3; i++) assert.equal(run('backup').status, 0)
  let names = archives(root)
  assert.equal(names.length, 2)
  // Make the newest archive look oldest on disk; the next prune must still drop by sequence.
  const newest = names.at(-1)!
  execFileSync('touch', ['-d', '2001-01-01', join(backupsDir(root), newest)])
  const r = run('backup', '--json')
  assert.equal(r.status, 0)
  names = archives(root)
  assert.deepEqual(names, [newest, `${r.json!.result.id}.tar.gz`])
  assert.deepEqual(r.json!.result.pruned.length, 1)

  // A failed verification does not count toward keep: the last good archives survive it.
  const corrupted = `${r.json!.result.id}.tar.gz`
  const file = join(backupsDir(root), corrupted)
  const tarball = gunzipSync(readFileSync(file))
  tarball[tarball.indexOf('controller=ctl-a')] = 'C'.charCodeAt(0)
  writeFileSync(file, gzipSync(tarball))
  assert.equal(run('backup', 'verify').status, 1)
  const third = run('backup', '--json')
  assert.equal(third.status, 0)
  assert.deepEqual(third.json!.result.pruned, [], 'the failed archive does not push out the good one before it')
  assert.deepEqual(archives(root), [newest, corrupted, `${third.json!.result.id}.tar.gz`])
  const fourth = run('backup', '--json')
  assert.deepEqual(archives(root), [`${third.json!.result.id}.tar.gz`, `${fourth.json!.result.id}.tar.gz`])
})

test('retention: an archive damaged after its verification does not count as good, whatever its record still says', (t) => {
  const {root, run} = setup(t, {keep: 2})
  const first = run('backup', '--json').json!.result.id as string
  const second = run('backup', '--json').json!.result.id as string
  // Cut behind ha's back: its .verify.json still says ok, for bytes it no longer has.
  const file = join(backupsDir(root), `${second}.tar.gz`)
  truncateSync(file, Math.floor(readFileSync(file).length / 2))
  assert.match(readFileSync(join(backupsDir(root), `${second}.verify.json`), 'utf8'), /"ok": true/)
  const third = run('backup', '--json')
  assert.equal(third.status, 0, third.stderr)
  assert.deepEqual(third.json!.result.pruned, [], 'the last good archive before the damaged one is kept')
  assert.deepEqual(archives(root), [`${first}.tar.gz`, `${second}.tar.gz`, `${third.json!.result.id}.tar.gz`])
})

test('a new archive never takes the id of an unreadable one: its seq is past every number in the names too', (t) => {
  const {root, run} = setup(t)
  mkdirSync(backupsDir(root), {recursive: true})
  // Unreadable heads: their seq is known only from their names.
  writeFileSync(join(backupsDir(root), '20991231T000000Z-0041.tar.gz'), 'not gzip')
  execFileSync('mkfifo', [join(backupsDir(root), '20991231T000000Z-0042.tar.gz')])
  const r = run('backup', '--json')
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.json!.result.id, /-0043$/)
  assert.equal(readFileSync(join(backupsDir(root), '20991231T000000Z-0041.tar.gz'), 'utf8'), 'not gzip', 'the unreadable archive is left as it was')
})

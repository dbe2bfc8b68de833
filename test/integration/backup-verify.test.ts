import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, readFileSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'
import {gunzipSync, gzipSync} from 'node:zlib'

import {archives, backupsDir, setup} from '../helpers/backup-fixture.js'
import {ha, tempDir} from '../helpers/cli.js'

/** ha backup verify and ha backup list: what they say about the archives in the backups folder. */

test('verify passes, then names the member whose byte was flipped, the truncated archive and the missing member', (t) => {
  const {root, run} = setup(t)
  assert.equal(run('backup').status, 0)
  const [name] = archives(root)
  const file = join(backupsDir(root), name)
  const good = readFileSync(file)
  const ok = run('backup', 'verify', name.replace('.tar.gz', ''))
  assert.equal(ok.status, 0, ok.stderr)
  assert.match(ok.stdout, /^ok /)

  // One byte of one member's content, changed inside the tar, recompressed: the hash catches it.
  const tarball = gunzipSync(good)
  const at = tarball.indexOf('controller=ctl-a')
  assert.ok(at > 0)
  tarball[at] = 'C'.charCodeAt(0)
  writeFileSync(file, gzipSync(tarball))
  const flipped = run('backup', 'verify', '--json')
  assert.equal(flipped.status, 1)
  const problems: string[] = flipped.json?.result.archives[0].problems
  assert.equal(problems.length, 1)
  assert.match(problems[0], /^files\/etc\/opt\/sun\/xvm\/satellite\.conf: checksum mismatch \(sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}\)$/)
  assert.match(run('backup', 'list').stdout, /FAILED/, 'list shows the failed verification')

  // A byte flipped in the compressed stream: gzip's CRC or the deflate data catches it.
  const corrupt = Buffer.from(good)
  corrupt[Math.floor(corrupt.length / 2)] ^= 0xff
  writeFileSync(file, corrupt)
  const bad = run('backup', 'verify')
  assert.equal(bad.status, 1)
  assert.match(bad.stdout, /FAILED/)

  // Truncated on disk.
  writeFileSync(file, good)
  truncateSync(file, Math.floor(good.length * 0.6))
  const truncated = run('backup', 'verify')
  assert.equal(truncated.status, 1)
  assert.match(truncated.stdout, /the archive is truncated \(gzip stream ends early\)/)

  // A member removed with GNU tar.
  const plain = join(tempDir(t), 'a.tar')
  writeFileSync(plain, gunzipSync(good))
  execFileSync('tar', ['--delete', '-f', plain, 'files/etc/hosts'])
  writeFileSync(file, gzipSync(readFileSync(plain)))
  const missing = run('backup', 'verify')
  assert.equal(missing.status, 1)
  assert.match(missing.stdout, /\/etc\/hosts: in the manifest but its member files\/etc\/hosts is missing from the archive/)
})


test('an archive padded with a quarter GiB of zeros is listed at once and fails verify as a decompression bomb', (t) => {
  const {root, run} = setup(t)
  assert.equal(run('backup').status, 0)
  const file = join(backupsDir(root), archives(root)[0])
  // A few hundred KiB of gzip that inflate to 256 MiB beyond what the manifest announces.
  execFileSync('sh', ['-c', 'f="$1"; (gzip -dc "$f"; head -c 268435456 /dev/zero) | gzip -1 > "$f.new" && mv "$f.new" "$f"', 'sh', file])
  const list = ha(['backup', 'list', '--json', '--config', join(root, '../ha.yaml'), '--node', 'primary'], {timeoutMs: 20_000})
  assert.equal(list.status, 3, `list must not walk the zeros, and says the archive failed: ${list.stderr}`)
  assert.equal(list.json!.result.backups[0].verified, false)
  assert.equal(list.json!.result.backups.length, 1)
  const verify = ha(['backup', 'verify', '--config', join(root, '../ha.yaml'), '--node', 'primary'], {timeoutMs: 20_000})
  assert.equal(verify.status, 1)
  assert.match(verify.stdout, /decompresses to more than \d+ bytes, beyond what its manifest announces/)
})


test('list shows id, time, host, version, size and verification, newest first', (t) => {
  const {run} = setup(t)
  assert.equal(run('backup').status, 0)
  assert.equal(run('backup').status, 0)
  const r = run('backup', 'list', '--json')
  assert.equal(r.status, 0)
  const [a, b] = r.json!.result.backups
  assert.ok(a.seq > b.seq)
  assert.equal(a.hostname, 'ctl-a')
  assert.equal(a.product_version, '2.1.0.1234')
  assert.equal(a.verified, true)
  assert.ok(a.size > 0)
  const human = run('backup', 'list').stdout.split('\n')
  assert.match(human[0], /^ID\s+CREATED\s+HOST\s+VERSION\s+SIZE\s+VERIFIED/)
  assert.ok(!/\u001B\[/.test(human.join('')), 'no colour off a terminal')
})


test('verify latest is the newest archive by its own sequence: when that one is empty or corrupt it fails naming it, never an older one that passes', (t) => {
  const {root, run} = setup(t)
  for (let i = 0; i < 3; i++) assert.equal(run('backup').status, 0)
  const [, older, newest] = archives(root)
  const file = join(backupsDir(root), newest)
  const id = newest.replace('.tar.gz', '')
  const cases: Array<[string, () => void]> = [
    ['empty', () => truncateSync(file, 0)],
    ['not gzip', () => writeFileSync(file, 'not gzip at all\n')],
    ['cut inside its manifest', () => writeFileSync(file, gzipSync(gunzipSync(readFileSync(join(backupsDir(root), older))).subarray(0, 700)))],
  ]
  for (const [what, damage] of cases) {
    damage()
    const human = run('backup', 'verify', 'latest')
    assert.equal(human.status, 1, `${what}: ${human.stdout}`)
    assert.match(human.stdout, new RegExp(`^FAILED ${id}:`), `${what}: the newest archive is the one named`)
    assert.doesNotMatch(human.stdout, /^ok /m, `${what}: no older archive is verified in its place`)
    const json = run('backup', 'verify', 'latest', '--json')
    assert.equal(json.status, 1)
    assert.deepEqual(json.json!.result.archives.map((a: {id: string; ok: boolean}) => [a.id, a.ok]), [[id, false]], what)
  }
})

test('list is newest first by each archive\'s own sequence, an unreadable archive in its place (its name\'s number), and exits 3 when a row failed', (t) => {
  const {root, run} = setup(t)
  for (let i = 0; i < 3; i++) assert.equal(run('backup').status, 0)
  const ids = archives(root).map((n) => n.replace('.tar.gz', ''))
  assert.equal(run('backup', 'list').status, 0, 'every archive good: exit 0')
  truncateSync(join(backupsDir(root), `${ids[1]}.tar.gz`), 0)
  const json = run('backup', 'list', '--json')
  assert.equal(json.status, 3, json.stderr)
  assert.equal(json.json!.status, 3)
  assert.deepEqual(json.json!.result.backups.map((b: {id: string; verified: boolean}) => [b.id, b.verified]), [[ids[2], true], [ids[1], false], [ids[0], true]])
  const human = run('backup', 'list')
  assert.equal(human.status, 3)
  const rows = human.stdout.split('\n').filter((l) => /^\d{8}T/.test(l))
  assert.deepEqual(rows.map((r) => r.split(/\s+/)[0]), [ids[2], ids[1], ids[0]], 'the table is in the same order')
  assert.match(rows[1], /unreadable$/)
})

test('verify counts members as tar lists them, the same number in its line and in --json', (t) => {
  const {root, run} = setup(t)
  assert.equal(run('backup').status, 0)
  const [name] = archives(root)
  const members = execFileSync('tar', ['-tzf', join(backupsDir(root), name)], {encoding: 'utf8'}).trim().split('\n').length
  const json = run('backup', 'verify', '--json')
  assert.equal(json.json!.result.archives[0].members, members)
  const human = run('backup', 'verify')
  assert.equal(human.status, 0)
  assert.match(human.stdout, new RegExp(`^ok +${name.replace('.tar.gz', '')}: ${members} members \\(manifest\\.json and ${members - 1} entries\\),`))
})

test('after a backup.include is removed, an older archive is verified against its own manifest: the drift is one line, damage is still named, nothing false is said', (t) => {
  const {config, root, run} = setup(t, {include: ['/etc/opt/site']})
  mkdirSync(join(root, 'etc/opt/site'))
  for (let i = 0; i < 40; i++) writeFileSync(join(root, `etc/opt/site/f${String(i).padStart(2, '0')}`), `site-file-${i}\n`)
  assert.equal(run('backup').status, 0)
  const [name] = archives(root)
  const id = name.replace('.tar.gz', '')
  writeFileSync(config, readFileSync(config, 'utf8').replace(/ {2}include:\n {4}- \/etc\/opt\/site\n/, ''))
  assert.doesNotMatch(readFileSync(config, 'utf8'), /include/)

  const drift = run('backup', 'verify', id)
  assert.equal(drift.status, 1)
  const lines = drift.stdout.trim().split('\n')
  assert.deepEqual(lines.slice(0, 1), [`FAILED ${id}:`])
  assert.equal(lines.length, 2, `one line for the drift, nothing else is wrong:\n${drift.stdout}`)
  assert.match(lines[1], /41 entries it would not save \(\/etc\/opt\/site, \/etc\/opt\/site\/f00, \/etc\/opt\/site\/f01 and 38 more\)/)
  assert.match(lines[1], /backup\.include/)
  const json = run('backup', 'verify', id, '--json')
  const problems: string[] = json.json!.result.archives[0].problems
  assert.equal(problems.length, 41, '--json still names every refused entry')
  assert.ok(problems.every((p) => !/in the archive but not in the manifest/.test(p)), problems.join('\n'))

  // Damage inside the archive is still found, member by member, against the archive's own manifest.
  const file = join(backupsDir(root), name)
  const tarball = gunzipSync(readFileSync(file))
  tarball[tarball.indexOf('root:x:0:0')] = 'R'.charCodeAt(0)
  writeFileSync(file, gzipSync(tarball))
  const damaged = run('backup', 'verify', id)
  assert.equal(damaged.status, 1)
  assert.match(damaged.stdout, /files\/etc\/passwd: checksum mismatch/)
  assert.doesNotMatch(damaged.stdout, /not in the manifest/)
  assert.equal(damaged.stdout.trim().split('\n').length, 3)
})

test('verify shows at most ten problems of an archive and counts the rest; --json has every one', (t) => {
  const {root, run} = setup(t, {include: ['/etc/opt/site']})
  mkdirSync(join(root, 'etc/opt/site'))
  for (let i = 0; i < 30; i++) writeFileSync(join(root, `etc/opt/site/f${String(i).padStart(2, '0')}`), `site-file-${i}\n`)
  assert.equal(run('backup').status, 0)
  const [name] = archives(root)
  const id = name.replace('.tar.gz', '')
  const file = join(backupsDir(root), name)
  writeFileSync(file, gzipSync(Buffer.from(gunzipSync(readFileSync(file)).toString('latin1').replaceAll('site-file-', 'SITE-file-'), 'latin1')))
  const human = run('backup', 'verify', id)
  assert.equal(human.status, 1)
  const lines = human.stdout.trim().split('\n')
  assert.equal(lines.length, 12, human.stdout)
  assert.equal(lines.slice(1, 11).filter((l) => /checksum mismatch/.test(l)).length, 10)
  assert.match(lines[11], new RegExp(`… and 20 more \\(ha backup verify ${id} --json lists every one\\)`))
  assert.equal(run('backup', 'verify', id, '--json').json!.result.archives[0].problems.length, 30)
})

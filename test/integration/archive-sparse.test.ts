import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'
import {gunzipSync} from 'node:zlib'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {ha, tempDir} from '../helpers/cli.js'

/**
 * A sparse member is read one way by node-tar (ha's reader) and another by GNU tar: node-tar skips
 * an old-GNU 'S' member without a word and drops pax GNU.sparse.* records (reading the stored
 * data as the content), GNU tar extracts a file with holes. ha backup never writes one, so where
 * the two tools differ ha must refuse. Each archive here is made by real GNU tar from a real
 * sparse file (truncate), GNU tar extracts it in the same test to show it reads something other
 * than the manifest says, and `ha backup verify` must refuse it naming the member; restore shares
 * its judgement (validateArchive), and so does `ha backup list`.
 */
const member = 'files/etc/opt/sun/xvm/satellite.conf'
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({primaryRoot: root}))
  const run = (...args: string[]) => ha([...args, '--json', '--config', config, '--node', 'primary'], {timeoutMs: 30_000})
  assert.equal(run('backup').status, 0)
  const backups = join(root, 'var/opt/sun/xvm/.ha/backups')
  const archive = join(backups, readdirSync(backups).find((n) => n.endsWith('.tar.gz'))!)
  // ha's own archive, unpacked by GNU tar; its member list in order (manifest.json first).
  const tree = join(dir, 'tree')
  mkdirSync(tree)
  execFileSync('tar', ['-xzf', archive, '-C', tree])
  const list = join(dir, 'members')
  writeFileSync(list, execFileSync('tar', ['-tzf', archive]))
  // A real sparse file: 4 bytes, a 1 MiB hole, 4 bytes.
  const sparse = join(dir, 'sparse')
  mkdirSync(join(sparse, 'files/etc/opt/sun/xvm'), {recursive: true})
  execFileSync('sh', ['-c', 'f="$1"; printf head > "$f"; truncate -s 1048576 "$f"; printf tail >> "$f"', 'sh', join(sparse, member)])
  return {archive, dir, list, run, sparse, tree}
}

/** What GNU tar extracts for `member` from the archive now in place. */
function gnuExtracts(t: Parameters<typeof tempDir>[0], archive: string): Buffer {
  const out = tempDir(t)
  execFileSync('tar', ['-xzf', archive, '-C', out])
  return readFileSync(join(out, member))
}

function verifyRefuses(run: (...args: string[]) => ReturnType<typeof ha>, problem: RegExp): void {
  const verify = run('backup', 'verify')
  assert.equal(verify.status, 1, verify.stdout + verify.stderr)
  assert.match((verify.json!.result.archives[0].problems as string[]).join('\n'), problem)
  const list = run('backup', 'list')
  assert.equal(list.status, 3, 'a FAILED row makes ha backup list exit 3\n' + list.stderr)
  assert.equal(list.json!.result.backups[0].verified, false)
  assert.match((list.json!.result.backups[0].problems as string[]).join('\n'), problem)
}

test("an old-GNU sparse member ('S', tar --sparse --format=gnu) after ha's own members: GNU tar extracts it over the saved file, ha refuses it", (t) => {
  const {archive, list, run, sparse, tree} = setup(t)
  const manifest = JSON.parse(readFileSync(join(tree, 'manifest.json'), 'utf8'))
  const saved = manifest.entries.find((e: {member: string}) => e.member === member)
  const tar = archive.replace(/\.gz$/, '')
  execFileSync('tar', ['--format=gnu', '--no-recursion', '-cf', tar, '-C', tree, '-T', list])
  execFileSync('tar', ['--format=gnu', '--sparse', '-rf', tar, '-C', sparse, member])
  assert.match(execFileSync('tar', ['-tvf', tar], {encoding: 'utf8'}), /^-\S+ \S+ +1048580 .* files\/etc\/opt\/sun\/xvm\/satellite\.conf$/m)
  execFileSync('sh', ['-c', 'gzip -f "$1"', 'sh', tar])
  const extracted = gnuExtracts(t, archive)
  assert.equal(extracted.length, 1_048_580, 'GNU tar extracts the sparse file, holes and all')
  assert.notEqual(sha256(extracted), saved.sha256, 'not what the manifest says')
  verifyRefuses(run, /member "files\/etc\/opt\/sun\/xvm\/satellite\.conf" is an old-GNU sparse file \(typeflag 'S'\): GNU tar would extract it, with holes/)
})

for (const version of ['0.0', '1.0']) {
  test(`a pax sparse member (tar --sparse --format=pax, GNU.sparse.* ${version}) whose manifest says what node-tar reads: GNU tar extracts another file, ha refuses it`, (t) => {
    const {archive, dir, list, run, sparse, tree} = setup(t)
    // The stored data, as node-tar reads it when it drops the GNU.sparse.* records: made by GNU
    // tar alone first, so the manifest can be made to agree with it.
    const alone = join(dir, 'alone.tar')
    execFileSync('tar', ['--format=pax', '--sparse', `--sparse-version=${version}`, '-cf', alone, '-C', sparse, member])
    const raw = readFileSync(alone)
    const pax = 512
    const paxSize = Number.parseInt(raw.subarray(124, 136).toString('latin1'), 8)
    const header = pax + Math.ceil(paxSize / 512) * 512
    const stored = raw.subarray(header + 512, header + 512 + Number.parseInt(raw.subarray(header + 124, header + 136).toString('latin1'), 8))
    const name = raw.subarray(header, header + 100).toString('latin1').replace(/\0.*$/s, '')
    const manifest = JSON.parse(readFileSync(join(tree, 'manifest.json'), 'utf8'))
    const saved = manifest.entries.find((e: {member: string}) => e.member === member)
    Object.assign(saved, {sha256: sha256(stored), size: stored.length})
    writeFileSync(join(tree, 'manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`)
    const members = readFileSync(list, 'utf8').split('\n').filter((m) => m && m !== member)
    writeFileSync(list, `${members.join('\n')}\n`)
    const tar = archive.replace(/\.gz$/, '')
    execFileSync('tar', ['--format=pax', '--no-recursion', '-cf', tar, '-C', tree, '-T', list])
    execFileSync('tar', ['--format=pax', '--sparse', `--sparse-version=${version}`, '-rf', tar, '-C', sparse, member])
    execFileSync('sh', ['-c', 'gzip -f "$1"', 'sh', tar])
    const extracted = gnuExtracts(t, archive)
    assert.equal(extracted.length, 1_048_580, 'GNU tar extracts the sparse file, holes and all')
    assert.notEqual(sha256(extracted), saved.sha256, 'not what the manifest says')
    // 0.0 keeps the member's name; 1.0 names it GNUSparseFile.<GNU tar's pid>/, with the real name in a record.
    const named = name.replaceAll('.', '\\.').replace(/GNUSparseFile\\\.\d+/, 'GNUSparseFile\\.\\d+')
    assert.equal(name === member, version === '0.0')
    verifyRefuses(run, new RegExp(`member "${named}" is a GNU sparse file \\(pax GNU\\.sparse\\.\\* records\\): GNU tar would extract it with holes`))
  })
}

test('ha backup of a sparse file writes it whole (no sparse member, no GNU.sparse record) and verifies it', (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({primaryRoot: root}))
  execFileSync('sh', ['-c', 'f="$1"; truncate -s 1048576 "$f"; printf tail >> "$f"', 'sh', join(root, 'etc/opt/sun/xvm/satellite.conf')])
  const backup = ha(['backup', '--json', '--config', config, '--node', 'primary'], {timeoutMs: 30_000})
  assert.equal(backup.status, 0, backup.stdout + backup.stderr)
  const backups = join(root, 'var/opt/sun/xvm/.ha/backups')
  const archive = join(backups, readdirSync(backups).find((n) => n.endsWith('.tar.gz'))!)
  const tar = gunzipSync(readFileSync(archive))
  assert.ok(!tar.includes('GNU.sparse'), 'no GNU.sparse record')
  for (let at = 0; at + 512 <= tar.length; ) {
    const block = tar.subarray(at, at + 512)
    if (block.every((b) => b === 0)) break
    assert.notEqual(String.fromCharCode(block[156]), 'S', `no sparse member (header at ${at})`)
    at += 512 + Math.ceil(Number.parseInt(block.subarray(124, 136).toString('latin1'), 8) / 512) * 512
  }

  assert.equal(sha256(gnuExtracts(t, archive)), sha256(readFileSync(join(root, 'etc/opt/sun/xvm/satellite.conf'))), 'GNU tar extracts the file as it is')
  assert.equal(ha(['backup', 'verify', '--config', config, '--node', 'primary']).status, 0)
})

import assert from 'node:assert/strict'
import {existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'
import {gzipSync} from 'node:zlib'

import {ArchiveRejected, extractToStaging} from '../../src/restore/extract.js'
import {hostPathProblem, symlinkTargetInside} from '../../src/backup/validate-manifest.js'
import {parseMapFlags} from '../../src/restore/map-flag.js'
import {tempDir} from '../helpers/cli.js'
import {craftBackup, type SavedSpec, tarBytes} from '../helpers/craft-archive.js'

const root = {gid: 0, group: 'root', uid: 0, user: 'root'}
const conf: SavedSpec = {...root, content: 'a=1\n', mode: 0o644, path: '/etc/opt/sun/a.conf'}

describe('extraction into staging', () => {
  test('a well-formed archive lands in a fresh 0700 directory, checked against its manifest', async (t) => {
    const dir = tempDir(t)
    const c = craftBackup([{...root, mode: 0o755, path: '/etc/opt/sun', type: 'directory'}, conf, {...root, mode: 0o777, path: '/etc/opt/sun/l', target: 'a.conf', type: 'symlink'}])
    writeFileSync(join(dir, 'a.tar.gz'), gzipSync(tarBytes(c)))
    const staged = await extractToStaging(join(dir, 'a.tar.gz'), join(dir, 'stage'))
    assert.equal(lstatSync(staged.dir).mode & 0o777, 0o700)
    assert.equal(readFileSync(join(staged.dir, 'files/etc/opt/sun/a.conf'), 'utf8'), 'a=1\n')
    assert.ok(!existsSync(join(staged.dir, 'files/etc/opt/sun/l')), 'symlinks are never materialised in staging')
    await staged.remove()
    assert.deepEqual(readdirSync(join(dir, 'stage')), [])
  })

  test('a 256 MiB run of zeros after the last member stops at the size the manifest announced', async (t) => {
    const dir = tempDir(t)
    const c = craftBackup([conf])
    writeFileSync(join(dir, 'bomb.tar.gz'), gzipSync(Buffer.concat([tarBytes(c), Buffer.alloc(256 * 1024 * 1024)])))
    await assert.rejects(extractToStaging(join(dir, 'bomb.tar.gz'), join(dir, 'stage')), (error: ArchiveRejected) => {
      assert.match(error.problems.join('\n'), /bomb\.tar\.gz decompresses to more than \d+ bytes.*decompression bomb/, 'the budget names the archive')
      return true
    })
    assert.deepEqual(readdirSync(join(dir, 'stage')), [], 'staging removed')
  })

  test('a member not in the manifest is refused at its header, before its data is written', async (t) => {
    const dir = tempDir(t)
    const c = craftBackup([conf])
    c.members.push({body: Buffer.alloc(64 * 1024 * 1024), name: 'files/etc/opt/sun/huge', type: 'File'})
    writeFileSync(join(dir, 'x.tar.gz'), gzipSync(tarBytes(c)))
    await assert.rejects(extractToStaging(join(dir, 'x.tar.gz'), join(dir, 'stage')), /huge" is in the archive but not in the manifest/)
    assert.deepEqual(readdirSync(join(dir, 'stage')), [])
  })

  test('two archives one after the other: the second gets a fresh directory and writes nothing through the first one\'s link', async (t) => {
    const dir = tempDir(t)
    const outside = join(dir, 'outside')
    mkdirSync(outside)
    const first = craftBackup([conf, {...root, mode: 0o777, path: '/etc/opt/sun/plugins', target: outside, type: 'symlink'}])
    const second = craftBackup([conf, {...root, content: 'evil\n', mode: 0o644, path: '/etc/opt/sun/plugins/evil'}])
    writeFileSync(join(dir, '1.tar.gz'), gzipSync(tarBytes(first)))
    writeFileSync(join(dir, '2.tar.gz'), gzipSync(tarBytes(second)))
    const a = await extractToStaging(join(dir, '1.tar.gz'), join(dir, 'stage'))
    const b = await extractToStaging(join(dir, '2.tar.gz'), join(dir, 'stage'))
    assert.notEqual(a.dir, b.dir)
    assert.equal(readFileSync(join(b.dir, 'files/etc/opt/sun/plugins/evil'), 'utf8'), 'evil\n')
    assert.deepEqual(readdirSync(outside), [])
    await a.remove()
    await b.remove()
  })
})

describe('manifest paths', () => {
  test('host paths must be absolute, normalised and within the limits', () => {
    assert.equal(hostPathProblem('/etc/passwd'), undefined)
    assert.equal(hostPathProblem('etc/passwd'), 'is not absolute')
    assert.equal(hostPathProblem('/etc/../root'), 'contains ".."')
    assert.equal(hostPathProblem('/etc//passwd'), 'is not normalised (empty or "." component)')
    assert.equal(hostPathProblem('/etc/./passwd'), 'is not normalised (empty or "." component)')
    assert.match(hostPathProblem(`/${'d/'.repeat(60)}f`)!, /levels deep/)
    assert.match(hostPathProblem(`/${'x'.repeat(2000)}`)!, /longer than/)
  })

  test('a relative symlink may not climb above the root; an absolute one names a path in the same root', () => {
    assert.equal(symlinkTargetInside('/etc/opt/sun/l', 'a.conf'), '/etc/opt/sun/a.conf')
    assert.equal(symlinkTargetInside('/etc/opt/sun/l', '../../../etc/hosts'), '/etc/hosts')
    assert.equal(symlinkTargetInside('/etc/opt/sun/l', '../../../../etc/shadow'), undefined)
    assert.equal(symlinkTargetInside('/etc/localtime', '/usr/share/zoneinfo/UTC'), '/usr/share/zoneinfo/UTC')
  })
})

describe('--map', () => {
  test('user:, group: and bare forms; numeric ids stay numbers', () => {
    const m = parseMapFlags(['user:oracle=oracle2', 'group:dba=1500', 'xvm=xvm2'])
    assert.deepEqual([...m.users], [['oracle', 'oracle2']])
    assert.deepEqual([...m.groups], [['dba', 1500]])
    assert.deepEqual([...m.both], [['xvm', 'xvm2']])
  })

  test('a bad form or a name mapped twice is a usage error', () => {
    assert.throws(() => parseMapFlags(['oracle']), /expected user:OLD=NEW/)
    assert.throws(() => parseMapFlags(['uzer:a=b']), /expected user:OLD=NEW/)
    assert.throws(() => parseMapFlags(['user:a=b', 'user:a=c']), /mapped twice/)
  })
})

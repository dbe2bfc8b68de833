import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'
import {gzipSync} from 'node:zlib'
import {Header, Pax} from 'tar'

import {controllerConfig} from '../../scripts/controller-root.mjs'
import {manifestBytesAllowed, manifestLimits} from '../../src/backup/manifest.js'
import {validateArchive} from '../../src/backup/validate-archive.js'
import {ha, haBin} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {backupsOf, makePair, moveStorage, type Pair} from '../helpers/restore-fixture.js'

/**
 * Big data directories (issue 10): a backup is as big as what the admin saves. The manifest's
 * limit scales with its entry count, ha backup checks it before writing, and every reader
 * applies the same rule without ever holding more than an archive's declared size in memory.
 */
const skip = missingPrerequisite(['root'])

/** The pair with backup.include listing `include` on both nodes. */
function withInclude(pair: Pair, include: string[]): void {
  writeFileSync(pair.config, controllerConfig({include, primaryRoot: pair.primary, secondaryRoot: pair.secondary}))
}

/** `count` small files under <root>/opt/big, 1,000 per folder. */
function smallFiles(root: string, count: number): void {
  for (let d = 0; d * 1000 < count; d++) {
    const dir = join(root, 'opt/big', `d${String(d).padStart(4, '0')}`)
    mkdirSync(dir, {recursive: true})
    for (let i = 0; i < 1000 && d * 1000 + i < count; i++) writeFileSync(join(dir, `f${i}`), `${d}.${i}\n`)
  }
}

describe('big data directories', {skip}, () => {
  test('a backup of 200,000 small files succeeds, and ha restore --dry-run --json on the peer reads every one of them', (t) => {
    const pair = makePair(t)
    const count = 200_000
    let started = Date.now()
    smallFiles(pair.primary, count)
    withInclude(pair, ['/opt/big'])
    t.diagnostic(`generated ${count} files in ${Date.now() - started} ms`)
    started = Date.now()
    const backup = ha(['backup', '--json', '--config', pair.config, '--node', 'primary'], {timeoutMs: 600_000})
    t.diagnostic(`ha backup took ${Date.now() - started} ms`)
    assert.equal(backup.status, 0, backup.stdout + backup.stderr)
    // Each of 1,000 folders, its files, and /opt/big itself, beside the built-in manifest's entries.
    assert.ok(backup.json?.result.entries > count + 200, `entries: ${backup.json?.result.entries}`)

    moveStorage(pair)
    started = Date.now()
    // Run here rather than through ha(): its JSON (every file listed) is past spawnSync's default buffer.
    const run = spawnSync(process.execPath, [haBin, 'restore', '--dry-run', '--json', '--config', pair.config, '--node', 'secondary'], {encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, timeout: 600_000})
    const dry = {json: JSON.parse(run.stdout), status: run.status, stderr: run.stderr}
    t.diagnostic(`ha restore --dry-run --json took ${Date.now() - started} ms`)
    assert.equal(dry.status, 0, dry.stderr)
    const result = dry.json!.result
    assert.equal(result.backup.id, backup.json!.result.id)
    const big = result.files.filter((f: {path: string}) => f.path.startsWith('/opt/big/d'))
    assert.equal(big.filter((f: {type: string}) => f.type === 'file').length, count, 'JSON keeps every file')
    assert.ok(big.some((f: {path: string}) => f.path === '/opt/big/d0199/f999'))
  })

  test('a manifest past its limit is refused before the archive is written, naming the include that brought it in and what to do', (t) => {
    const pair = makePair(t)
    // 1,500 files whose paths are 1,000 bytes: the manifest needs about 2.3 KiB an entry, more
    // than the 1 KiB an entry (plus 1 MiB) it is allowed.
    const segment = 'a'.repeat(23)
    const deep = join('/opt/long', ...Array.from({length: 40}, () => segment))
    mkdirSync(join(pair.primary, deep), {recursive: true})
    for (let i = 0; i < 1500; i++) writeFileSync(join(pair.primary, deep, `file-${String(i).padStart(5, '0')}`), 'x')
    withInclude(pair, ['/opt/long'])
        const r = ha(['backup', '--config', pair.config, '--node', 'primary'])
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, /the backup's manifest would be [\d.]+ MiB for \d+ entries \(limit [\d.]+ MiB/)
    assert.match(r.stderr, /the archive was not written, nothing was pruned/)
    assert.match(r.stderr, /backup\.include \/opt\/long: 15\d\d entries/)
    assert.match(r.stderr, /exclude what need not travel under \/opt\/long \(backup\.exclude/)
    assert.deepEqual(existsSync(backupsOf(pair.primary)) ? readdirSync(backupsOf(pair.primary)) : [], [], 'no archive, no temp file left')

    // The same data with the deep folder excluded is saved.
    writeFileSync(pair.config, controllerConfig({include: ['/opt/long'], primaryRoot: pair.primary, secondaryRoot: pair.secondary}).replace('backup:\n', `backup:\n  exclude:\n    - ${join('/opt/long', segment)}\n`))
    const ok = ha(['backup', '--config', pair.config, '--node', 'primary'])
    assert.equal(ok.status, 0, ok.stderr)
  })

  test('an archive claiming a huge manifest is refused from its tar header, before the body is read into memory', async (t) => {
    const pair = makePair(t)
    const claim = 200 * 1024 * 1024
    // The body really is there (200 MiB of zeros, 200 KiB compressed): only the header's claim is
    // judged, so memory stays far below what reading it would take.
    const manifestMember = (size: number, comment?: string) => {
      const pax = comment === undefined ? Buffer.alloc(0) : new Pax({comment, path: 'manifest.json'}).encode()
      const header = new Header({gid: 0, mode: 0o600, mtime: new Date(), path: 'manifest.json', size, type: 'File', uid: 0})
      header.encode()
      return gzipSync(Buffer.concat([pax, header.block!, Buffer.alloc(size), Buffer.alloc(1024)]), {level: 1})
    }

    const cases = [
      {comment: 'ha-backup/1 entries=3', why: new RegExp(`claims ${claim} bytes, more than the ${manifestBytesAllowed(3)} allowed for 3 entries`)},
      {comment: undefined, why: new RegExp(`claims ${claim} bytes, more than the ${manifestLimits.legacyBytes} allowed for an archive without an entry count`)},
      {comment: 'ha-backup/1 entries=50000000', why: /claims 50000000 entries \(limit 1000000\)/},
      {comment: 'ha-backup/1 entries=-1', why: /pax comment "ha-backup\/1 entries=-1" is not "ha-backup\/1 entries=N"/},
    ]
    for (const {comment, why} of cases) {
      const bytes = manifestMember(claim, comment)
      const rss = process.memoryUsage().rss
      const verdict = await validateArchive(bytes)
      assert.equal(verdict.ok, false)
      assert.match(verdict.problems.join('\n'), why)
      assert.ok(process.memoryUsage().rss - rss < 64 * 1024 * 1024, `memory grew by ${process.memoryUsage().rss - rss} bytes`)
    }

    // The commands say the same (the one judgement): verify names it, restore refuses it.
    writeFileSync(join(backupsOf(pair.secondary), '20261129T000000Z-0001.tar.gz'), manifestMember(claim, 'ha-backup/1 entries=3'))
    const verify = ha(['backup', 'verify', '--config', pair.config, '--node', 'secondary'])
    assert.notEqual(verify.status, 0)
    assert.match(verify.stdout + verify.stderr, /claims 209715200 bytes, more than the \d+ allowed for 3 entries/)
    const restore = ha(['restore', '--dry-run', '--config', pair.config, '--node', 'secondary'])
    assert.equal(restore.status, 1)
    assert.match(restore.stderr, /claims 209715200 bytes/)
  })
})

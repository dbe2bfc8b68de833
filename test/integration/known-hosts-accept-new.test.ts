import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {chownSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {keyOf, rng} from '../helpers/known-hosts-cases.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd, type TestSshd} from '../helpers/sshd.js'
import {haVerdict, runSsh, sshVerdict} from '../helpers/ssh-verdict.js'

/**
 * accept-new adds a host's key the way ssh(1) does: both run on identical files (generated
 * contents, modes, owners, symlinks, hard links, bytes that are not UTF-8) and must leave the
 * same bytes and the same file behind. HA_KNOWN_HOSTS_SEED=<n> replays a run.
 */
const skip = missingPrerequisite(['root', 'sshd'])
const seed = Number(process.env.HA_KNOWN_HOSTS_SEED ?? Math.floor(Math.random() * 2 ** 31))

type Layout = 'hard link' | 'missing file' | 'plain' | 'symlink' | 'symlink to a missing file'

interface Setup {
  /** The path given as known_hosts. */
  path: string
  /** The file that holds the lines (the symlink's target). */
  target: string
  other?: string
}

function build(dir: string, layout: Layout, bytes: Buffer, mode: number, uid: number, gid: number): Setup {
  mkdirSync(join(dir, 'ssh'), {recursive: true})
  mkdirSync(join(dir, 'real'), {recursive: true})
  const path = join(dir, 'ssh', 'known_hosts')
  const target = layout.startsWith('symlink') ? join(dir, 'real', 'kh') : path
  if (layout !== 'missing file' && layout !== 'symlink to a missing file') {
    writeFileSync(target, bytes, {mode})
    chownSync(target, uid, gid)
  }

  if (layout.startsWith('symlink')) symlinkSync('../real/kh', path)
  let other
  if (layout === 'hard link') {
    other = join(dir, 'real', 'second-name')
    linkSync(path, other)
  }

  return {other, path, target}
}

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({length: limit}, async () => {
      while (next < items.length) await fn(items[next++])
    }),
  )
}

function describeFile(setup: Setup) {
  const st = statSync(setup.target)
  return {
    isSymlink: lstatSync(setup.path).isSymbolicLink(),
    link: lstatSync(setup.path).isSymbolicLink() ? readlinkSync(setup.path) : undefined,
    mode: (st.mode & 0o7777).toString(8),
    nlink: st.nlink,
    owner: `${st.uid}:${st.gid}`,
  }
}

describe(`accept-new writes known_hosts as ssh(1) does (seed ${seed})`, {skip}, () => {
  let sshd: TestSshd
  let work: string
  let foreign: string

  before(async () => {
    sshd = await startSshd({extraPorts: 11})
    work = mkdtempSync(join(tmpdir(), 'ha-kh-accept-'))
    foreign = makeKey(join(work, 'foreign'))
  })
  after(async () => {
    await sshd?.stop()
    rmSync(work, {force: true, recursive: true})
  })

  test('mode, owner, symlink, hard link and every byte kept; the same line appended (24 generated files)', async () => {
    const r = rng(seed)
    const layouts: Layout[] = ['plain', 'symlink', 'hard link', 'missing file', 'symlink to a missing file']
    const failures: string[] = []
    const files = Array.from({length: 24}, (_, i) => {
      const layout = layouts[i % layouts.length]
      const mode = r.pick([0o600, 0o644, 0o640, 0o664, 0o444, 0o400, 0o666])
      const [uid, gid] = r.pick([
        [0, 0],
        [1234, 5678],
        [65_534, 65_534],
      ])
      const choices = [
        '# made by hand',
        `other.example ${foreign}`,
        `[127.0.0.1]:${sshd.port + 1} ${foreign}`,
        '',
        `caf\u00E9.example ${foreign} \u00E9t\u00E9`,
        `weird\u00FF\u00FE ${foreign}`,
        `crlf.example ${foreign}\r`,
      ]
      const lines = Array.from({length: r.int(5)}, () => r.pick(choices))
      const text = lines.join('\n') + (lines.length > 0 && r.bool(0.7) ? '\n' : '')
      const missing = layout === 'missing file' || layout === 'symlink to a missing file'
      const bytes = missing ? Buffer.alloc(0) : Buffer.from(text, r.bool() ? 'latin1' : 'utf8')
      return {bytes, gid, i, layout, missing, mode, uid}
    })
    await pool(files, 4, async ({bytes, gid, i, layout, missing, mode, uid}) => {
      const where = `file ${i}: ${layout}, mode ${mode.toString(8)}, owner ${uid}:${gid}, bytes ${JSON.stringify(bytes.toString('latin1'))}, seed ${seed}`
      const theirs = build(join(work, `${i}-ssh`), layout, bytes, mode, uid, gid)
      const ours = build(join(work, `${i}-ha`), layout, bytes, mode, uid, gid)
      const inode = existsSync(ours.target) ? statSync(ours.target).ino : undefined
      const sshRun = await runSsh(sshd, sshd.port, theirs.path, 'accept-new')
      assert.equal(sshVerdict(sshRun.code, sshRun.stderr), 'connect', `ssh: ${where}: ${sshRun.stderr}`)
      assert.equal(await haVerdict(sshd, sshd.port, ours.path, 'accept-new'), 'connect', where)

      let expected = readFileSync(theirs.target)
      // Named difference: ssh 9.2 glues the new line onto a last line without a newline; ha
      // ends that line first, as OpenSSH 9.3 and later do.
      if (bytes.length > 0 && bytes.at(-1) !== 0x0a) expected = Buffer.concat([bytes, Buffer.from('\n'), expected.subarray(bytes.length)])
      const got = readFileSync(ours.target)
      if (!got.equals(expected)) failures.push(`bytes differ: ssh ${JSON.stringify(expected.toString('latin1'))}, ha ${JSON.stringify(got.toString('latin1'))}: ${where}`)
      assert.ok(got.subarray(0, bytes.length).equals(bytes), `every byte that was there is still there: ${where}`)

      const [a, b] = [describeFile(theirs), describeFile(ours)]
      // Stricter than ssh, by name: a known_hosts ha creates is 0600; ssh uses its umask.
      if (missing) {
        assert.equal(b.mode, '600', `a new known_hosts is 0600: ${where}`)
        b.mode = a.mode
      }

      assert.deepEqual(b, a, `file properties after accept-new (ssh left ${JSON.stringify(a)}): ${where}`)
      if (inode !== undefined) assert.equal(statSync(ours.target).ino, inode, `same inode (appended, not replaced): ${where}`)
      if (ours.other) assert.ok(readFileSync(ours.other).equals(got), `the other hard link sees the new line: ${where}`)
    })

    assert.deepEqual(failures, [], `replay: HA_KNOWN_HOSTS_SEED=${seed}`)
  })

  test('12 ha processes adding 12 hosts to one known_hosts at once: all 12 lines are there', async () => {
    const path = join(work, 'concurrent_known_hosts')
    writeFileSync(path, `# shared\nother.example ${foreign}\n`, {mode: 0o644})
    const startAt = Date.now() + 4000
    const child = join(import.meta.dirname, '../helpers/accept-new-child.ts')
    const results = await Promise.all(
      sshd.ports.map(
        (port) =>
          new Promise<string>((resolve) => {
            execFile(process.execPath, ['--import', 'tsx', child, String(port), path, sshd.clientKey, String(startAt)], {encoding: 'utf8', timeout: 60_000}, (_error, stdout, stderr) =>
              resolve(`${stdout.trim()}${stderr.trim() ? ` (${stderr.trim()})` : ''}`),
            )
          }),
      ),
    )
    assert.deepEqual(results, sshd.ports.map(() => 'connect'))
    const lines = readFileSync(path, 'utf8').split('\n')
    assert.equal(lines.at(-1), '', 'the file ends with a newline')
    assert.deepEqual(lines.slice(0, 2), ['# shared', `other.example ${foreign}`])
    const added = lines.slice(2, -1).sort()
    const key = keyOf(sshd.hostKeyLine)
    assert.deepEqual(added, sshd.ports.map((port) => `[127.0.0.1]:${port} ${key.type} ${key.b64}`).sort())
    assert.equal((statSync(path).mode & 0o777).toString(8), '644')
  })
})

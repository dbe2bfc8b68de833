import assert from 'node:assert/strict'
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {labDataDir, labDown, labNetns, labPaths, labUp, labVersionFile, nodePaths} from '../../src/lab/lab.js'
import {journalFormat, writeJournal} from '../../src/restore/install.js'
import {ha, haBin} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * Each fault that once let `ha check` say "safe" while the failover or restore after it failed.
 * Every one must make check exit 3, FAIL its row by name, and print the fix under that row.
 * The injections are small named functions (each returns its undo) so they carry over to
 * whatever the lab is built from: they only need a node's root folder, its data_dir and its sshd.
 */

/** Another filesystem (a tmpfs) mounted at the secondary's data_dir; storage.device names the lab's loop device. */
export function mountOtherFilesystemAtDataDir(labDir: string): () => void {
  const dir = nodePaths(labDir, 'secondary').dataDir
  mkdirSync(dir, {recursive: true})
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'ha-fault-not-the-lun', dir])
  return () => execFileSync('umount', [dir])
}

/** The secondary's /etc a separate filesystem with no room left: restore would fail with ENOSPC. */
export function fillSeparateEtc(labDir: string): () => void {
  const etc = join(nodePaths(labDir, 'secondary').root, 'etc')
  const saved = `${etc}.before-fault`
  mkdirSync(etc, {recursive: true})
  // The node keeps its /etc (its sshd reads its host keys there): copied onto the new filesystem.
  execFileSync('cp', ['-a', etc, saved])
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'ha-fault-full-etc', etc])
  execFileSync('cp', ['-a', `${saved}/.`, etc])
  spawnSync('dd', ['if=/dev/zero', `of=${join(etc, 'filler')}`, 'bs=4k'], {stdio: 'ignore'})
  return () => {
    execFileSync('umount', [etc])
    rmSync(saved, {force: true, recursive: true})
  }
}

/** A restore stopped mid re-own on the primary: its undo journal says "installed", as restore leaves it. */
export async function leaveUnfinishedRestore(labDir: string): Promise<() => void> {
  const run = '0042-20261129T180000Z'
  const undo = join(nodePaths(labDir, 'primary').dataDir, '.ha/undo', run)
  mkdirSync(undo, {mode: 0o700, recursive: true})
  const root = nodePaths(labDir, 'primary').root
  await writeJournal(undo, {backup_id: 'lab', changes: [], created_at: new Date().toISOString(), format: journalFormat, root, run_id: run, state: 'installed'})
  return () => rmSync(undo, {force: true, recursive: true})
}

/** The secondary's version file replaced by a FIFO: reading it blocks forever. */
export function blockingVersionFile(labDir: string): () => void {
  const file = join(nodePaths(labDir, 'secondary').root, labVersionFile)
  const saved = readFileSync(file)
  rmSync(file)
  execFileSync('mkfifo', [file])
  return () => {
    rmSync(file)
    writeFileSync(file, saved)
  }
}

/**
 * Cuts the secondary's ssh sessions (children of its sshd: this check's only) once its probe
 * batch is blocked reading `fifo`, so the cut lands mid-batch.
 */
export async function cutSecondarySessionsMidBatch(labDir: string, fifo: string): Promise<void> {
  const sshd = readFileSync(nodePaths(labDir, 'secondary').sshdPid, 'utf8').trim()
  for (let i = 0; i < 200 && spawnSync('pgrep', ['-f', '--', fifo]).status !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  const children = spawnSync('pgrep', ['-P', sshd], {encoding: 'utf8'}).stdout.split('\n').filter(Boolean)
  for (const pid of children) spawnSync('kill', ['-KILL', pid])
}

const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = `/tmp/ha-lab-check-faults-${process.pid}`
const lab = labPaths(labDir)
const fromAdmin = {prefix: ['ip', 'netns', 'exec', labNetns.admin], timeoutMs: 90_000}

/** `ha check` as the admin runs it: the human table, and the rows by title (and node). */
function check() {
  const r = ha(['check', '--config', lab.config], fromAdmin)
  const lines = r.stdout.split('\n')
  const row = (title: string, node = '') => {
    const i = lines.findIndex((l) => l.includes(`  ${title}`) && (node === '' || new RegExp(`${title.replaceAll(/[()]/g, '.')}\\s+${node}\\s`).test(l)))
    assert.notEqual(i, -1, `no row "${title}" in:\n${r.stdout}${r.stderr}`)
    const fixes: string[] = []
    for (let j = i + 1; j < lines.length && /^\s+→ /.test(lines[j]); j++) fixes.push(lines[j].trim().slice(2))
    return {fixes, line: lines[i], status: lines[i].slice(0, 4)}
  }

  return {...r, row}
}

describe('ha check fails, by name and with the fix, on each fault that once passed', {skip}, () => {
  before(async () => {
    await labUp({labDir})
    // A backup to size a restore by, taken on the primary as its cron would.
    const r = spawnSync('ip', ['netns', 'exec', labNetns.primary, process.execPath, haBin, 'backup', '--node', 'primary', '--quiet', '--config', lab.config], {encoding: 'utf8', timeout: 90_000})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(check().status, 0, 'the healthy lab passes first')
  })
  after(async () => {
    await labDown({labDir})
    spawnSync('rm', ['-rf', labDir])
  })

  it('another filesystem at data_dir while storage.device names the shared device', () => {
    const undo = mountOtherFilesystemAtDataDir(labDir)
    try {
      const r = check()
      assert.equal(r.status, 3, r.stdout)
      const row = r.row('Storage (data_dir mounted)')
      assert.equal(row.status, 'FAIL')
      assert.match(row.line, /the wrong filesystem is mounted at data_dir: secondary: \S+ is mounted from ha-fault-not-the-lun, not from storage\.device \/dev\/loop\d+/)
      assert.match(row.fixes.join('\n'), new RegExp(`unmount what is mounted at \\S+${labDataDir} on secondary`))
    } finally {
      undo()
    }
  })

  it("a separate, full /etc on the node taking over (check measured only data_dir's parent)", () => {
    const undo = fillSeparateEtc(labDir)
    try {
      const r = check()
      assert.equal(r.status, 3, r.stdout)
      const row = r.row('Free space for a restore', 'secondary')
      assert.equal(row.status, 'FAIL')
      assert.match(row.line, /not enough room on secondary: \S+ MiB free on \S+\/secondary\/root\/etc \(install \S+\/etc\S*( and \d+ more)?\) needs/)
      assert.match(row.fixes.join('\n'), /free space on \S+\/secondary\/root\/etc on secondary \(restore installs/)
    } finally {
      undo()
    }
  })

  it('an unfinished ha restore (stopped mid re-own) names --resume and --undo', async () => {
    const undo = await leaveUnfinishedRestore(labDir)
    try {
      const r = check()
      assert.equal(r.status, 3, r.stdout)
      const row = r.row('No unfinished restore', 'primary')
      assert.equal(row.status, 'FAIL')
      assert.match(row.line, /ha restore run 0042-20261129T180000Z on primary did not finish \(stopped while re-owning the data directory/)
      assert.match(row.fixes.join('\n'), /on primary: ha restore --resume finishes run 0042/)
      assert.match(row.fixes.join('\n'), /on primary: ha restore --undo puts the host back/)
    } finally {
      undo()
    }
  })

  it('a version file that blocks on read: the version row names the timed-out probe; the node answered', () => {
    const undo = blockingVersionFile(labDir)
    try {
      const r = check()
      assert.equal(r.status, 3, r.stdout)
      assert.equal(r.row('SSH reachability and host key', 'secondary').status, 'PASS')
      const row = r.row('Product version parity')
      assert.equal(row.status, 'FAIL')
      assert.match(row.line, /secondary: \S+\.version\.properties: reading the version file timed out after 10s and was killed \(probe version\)/)
      assert.match(row.fixes.join('\n'), /FIFO/)
      assert.doesNotMatch(r.stdout, /unreachable/)
    } finally {
      undo()
    }
  })

  it('the connection cut mid-batch: rows say the probes failed, not "unreachable"', async () => {
    const undo = blockingVersionFile(labDir)
    try {
      const child = spawn('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, 'check', '--config', lab.config], {env: {...process.env, NO_COLOR: '1'}})
      let stdout = ''
      child.stdout.on('data', (d) => (stdout += d))
      const [status] = await Promise.all([new Promise<null | number>((resolve) => child.on('close', resolve)), cutSecondarySessionsMidBatch(labDir, join(nodePaths(labDir, 'secondary').root, labVersionFile))])
      assert.equal(status, 3, stdout)
      const reach = stdout.split('\n').find((l) => /SSH reachability and host key\s+secondary/.test(l))!
      assert.match(reach, /^FAIL .*secondary answered \(host key good\), but its probe batch failed/)
      assert.match(stdout, /FAIL\s+Product version parity\s+cannot compare versions: secondary: secondary answered but its probes failed/)
      assert.doesNotMatch(stdout, /unreachable/)
      assert.match(stdout.split('\n')[stdout.split('\n').indexOf(reach) + 1], /^\s+→ /, 'its fix under the row')
    } finally {
      undo()
    }
  })
})

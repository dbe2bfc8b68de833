import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {runInNode} from '../../src/lab/container.js'
import {labDataDir, labNetns, labPaths, labVersionFile, nodePaths} from '../../src/lab/lab.js'
import {nodeProcesses} from '../../src/lab/power.js'
import {journalFormat, journalName, type RestoreJournal, reownJournalName, savedAccounts} from '../../src/restore/run-journal.js'
import {ha, haBin} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor, labDone, labReady} from './shared-lab.js'

/**
 * Each fault that once let `ha check` say "safe" while the failover or restore after it failed.
 * Every one must make check exit 3, FAIL its row by name, and print the fix under that row.
 * A fault `ha lab fault` makes (wrong-device, etc-full) is tested in faults.test.ts through that
 * command; here are the ones it has no kind for. Each injection is made where a real host has it:
 * inside the node (its own mount namespace, over nsenter or ssh), or in its own / for plain files.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('check-faults')
const lab = labPaths(labDir)
const fromAdmin = {prefix: ['ip', 'netns', 'exec', labNetns.admin], timeoutMs: 90_000}

/** Runs a shell command on a node over ssh from the admin namespace (the node's own mounts). */
function ssh(node: 'primary' | 'secondary', command: string, input?: string) {
  const host = node === 'primary' ? '198.18.0.2' : '198.18.0.3'
  const r = spawnSync(
    'ip',
    ['netns', 'exec', labNetns.admin, 'ssh', '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${host}`, command],
    {encoding: 'utf8', input, timeout: 90_000},
  )
  return {status: r.status, stderr: r.stderr ?? '', stdout: r.stdout ?? ''}
}

/**
 * The secondary's /etc made a separate filesystem (a tmpfs inside the node, holding a copy of its
 * /etc so its sshd still logs in), then filled; its / (where restore stages, /var/tmp) keeps room.
 */
async function fillSeparateEtc(): Promise<() => Promise<void>> {
  const script = 'cp -a /etc /run/etc.before-fault && mount -t tmpfs -o size=32m ha-fault-full-etc /etc && cp -a /run/etc.before-fault/. /etc && { dd if=/dev/zero of=/etc/.ha-fault-filler bs=4k 2>/dev/null; true; }'
  await runInNode(labDir, 'secondary', ['sh', '-c', script], {timeoutMs: 60_000})
  return async () => {
    await runInNode(labDir, 'secondary', ['sh', '-c', 'umount /etc || umount -l /etc; rm -rf /run/etc.before-fault'])
  }
}

/** A restore stopped mid re-own on the primary: its undo journal says "installed", as restore leaves it. */
function leaveUnfinishedRestore(): () => void {
  const run = '0042-20261129T180000Z'
  const undo = `${labDataDir}/.ha/undo/${run}`
  const journal: RestoreJournal = {
    backup_id: 'lab',
    changes: [],
    created_at: new Date().toISOString(),
    format: journalFormat,
    manual_maps: {groups: [], users: []},
    reown_journal: reownJournalName,
    reown_maps: {groups: [], users: []},
    root: '/',
    run_id: run,
    saved_accounts: savedAccounts,
    state: 'installed',
  }
  const made = ssh('primary', `mkdir -p -m 700 ${undo} && umask 077 && cat > ${undo}/${journalName}`, `${JSON.stringify(journal)}\n`)
  assert.equal(made.status, 0, made.stderr)
  return () => assert.equal(ssh('primary', `rm -rf ${undo}`).status, 0)
}

/** The secondary's version file replaced by a FIFO (in its own /): reading it blocks forever. */
function blockingVersionFile(): () => void {
  const file = join(nodePaths(labDir, 'secondary').root, labVersionFile)
  const saved = readFileSync(file)
  rmSync(file)
  assert.equal(spawnSync('mkfifo', [file]).status, 0)
  return () => {
    rmSync(file)
    writeFileSync(file, saved)
  }
}

/**
 * Once the secondary's probe batch is blocked reading its version file, kills its ssh sessions
 * (the children of its sshd listener: this check's only), so the cut lands mid-batch.
 */
async function cutSecondarySessionsMidBatch(): Promise<void> {
  const reading = (ps: Array<{args: string}>) => ps.some((p) => /\bcat -- /.test(p.args) && p.args.endsWith(labVersionFile))
  let processes = await nodeProcesses(labDir, 'secondary')
  for (let i = 0; i < 200 && !reading(processes); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    processes = await nodeProcesses(labDir, 'secondary')
  }

  assert.ok(reading(processes), 'the probe batch never reached the version file')
  const listener = processes.find((p) => p.ppid === processes[0].pid && /^sshd: .*\[listener\]|^\/usr\/sbin\/sshd /.test(p.args))
  assert.ok(listener, `no sshd listener on secondary: ${JSON.stringify(processes)}`)
  for (const p of processes.filter((q) => q.ppid === listener.pid)) spawnSync('kill', ['-KILL', String(p.pid)])
}

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
    await labReady(labDir)
    // A backup to size a restore by, taken on the primary as its cron would.
    const backup = ssh('primary', 'ha backup --quiet')
    assert.equal(backup.status, 0, backup.stderr)
    const healthy = check()
    assert.equal(healthy.status, 0, `the healthy lab passes first:\n${healthy.stdout}${healthy.stderr}`)
  })
  after(() => labDone(labDir))

  it("a separate, full /etc on the node taking over, its / with room (check measured only data_dir's parent)", async () => {
    const undo = await fillSeparateEtc()
    try {
      const r = check()
      assert.equal(r.status, 3, r.stdout)
      const row = r.row('Free space for a restore', 'secondary')
      assert.equal(row.status, 'FAIL')
      assert.match(row.line, /not enough room on secondary: 0\.0 MiB free on \/etc \(install \/etc\S*( and \d+ more)?\) needs/)
      assert.doesNotMatch(row.line, /free on \/ \(staging/, 'the staging place on / has room')
      assert.match(row.fixes.join('\n'), /free space on \/etc on secondary \(restore installs/)
    } finally {
      await undo()
    }

    assert.equal(check().status, 0, 'healthy again once /etc is back')
  })

  it('an unfinished ha restore (stopped mid re-own) names --resume and --undo', () => {
    const undo = leaveUnfinishedRestore()
    try {
      const r = check()
      assert.equal(r.status, 3, r.stdout)
      const row = r.row('No unfinished restore')
      assert.equal(row.status, 'FAIL')
      assert.match(row.line, /on primary: restore run 0042-20261129T180000Z installed its files but did not finish re-owning \/var\/opt\/sun\/xvm/)
      assert.match(row.fixes.join('\n'), /on primary: ha restore --resume finishes restore run 0042-20261129T180000Z/)
      assert.match(row.fixes.join('\n'), /on primary: or ha restore --undo puts the host back/)
    } finally {
      undo()
    }
  })

  it('a version file that blocks on read: the version row names the timed-out probe; the node answered', () => {
    const undo = blockingVersionFile()
    try {
      const r = check()
      assert.equal(r.status, 3, r.stdout)
      assert.equal(r.row('SSH reachability and host key', 'secondary').status, 'PASS')
      const row = r.row('Product version parity')
      assert.equal(row.status, 'FAIL')
      assert.match(row.line, /secondary: \S+\.version\.properties: reading the version file timed out after \d+s and was killed \(probe version\)/)
      assert.match(row.fixes.join('\n'), /FIFO/)
      assert.doesNotMatch(r.stdout, /unreachable/)
    } finally {
      undo()
    }
  })

  it('the connection cut mid-batch: rows say the probes failed, not "unreachable"', async () => {
    const undo = blockingVersionFile()
    try {
      const child = spawn('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, 'check', '--config', lab.config], {env: {...process.env, NO_COLOR: '1'}})
      let stdout = ''
      child.stdout.on('data', (d) => (stdout += d))
      const [status] = await Promise.all([new Promise<null | number>((resolve) => child.on('close', resolve)), cutSecondarySessionsMidBatch()])
      assert.equal(status, 3, stdout)
      const lines = stdout.split('\n')
      const reach = lines.find((l) => /SSH reachability and host key\s+secondary/.test(l))!
      assert.match(reach, /^FAIL .*secondary answered \(host key good\), but its probe batch failed/)
      assert.match(stdout, /FAIL\s+Product version parity\s+cannot compare versions: secondary: secondary answered but its probes failed/)
      assert.doesNotMatch(stdout, /unreachable/)
      assert.match(lines[lines.indexOf(reach) + 1], /^\s+→ /, 'its fix under the row')
    } finally {
      undo()
    }
  })
})

import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {haBin} from '../helpers/cli.js'
import {craftBackup, writeCrafted} from '../helpers/craft-archive.js'
import {closedPort, loopbackDataDir, type PairNode, writeLoopbackConfig as writeConfig} from '../helpers/loopback-pair.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd, type TestSshd} from '../helpers/sshd.js'

/**
 * `ha status` never names an active node it could not confirm: through the built CLI, with the
 * nodes' ssh pointing at closed loopback ports, and with one real sshd on 127.0.0.1 for the node
 * that answers (its data_dir a real tmpfs mount when it is to hold the storage).
 */
const dataDir = loopbackDataDir
type Node = PairNode

function status(config: string, json: boolean) {
  const r = spawnSync(process.execPath, [haBin, 'status', '--config', config, ...(json ? ['--json'] : [])], {encoding: 'utf8', env: {...process.env, HA_FAILOVER_DIR: join(dirname(config), 'journal'), NO_COLOR: '1'}, timeout: 60_000})
  return {json: json ? JSON.parse(r.stdout) : undefined, status: r.status, stderr: r.stderr, stdout: r.stdout}
}

/** What a user reads: no "Active: <node>", no epoch number, no "none found" for a backup never looked for. */
function assertUnknown(r: ReturnType<typeof status>, why: RegExp) {
  assert.equal(r.status, 1, r.stdout + r.stderr)
  assert.match(r.stdout, /^Active: +UNKNOWN/m)
  assert.match(r.stdout, /^Epoch: +unknown$/m)
  assert.doesNotMatch(r.stdout, /^(Active|Epoch):.*(primary|secondary|takeover|storage holder)/m)
  assert.doesNotMatch(r.stdout, /none found/)
  assert.match(r.stdout, why)
}

test('both nodes unreachable: ha status names no active node, no epoch and no source, and exits 1 saying why', (t) => {
  const work = mkdtempSync(join(tmpdir(), 'ha-status-'))
  t.after(() => rmSync(work, {force: true, recursive: true}))
  const key = join(work, 'id')
  makeKey(key)
  writeFileSync(join(work, 'known_hosts'), '')
  const config = writeConfig(work, {primary: {key, port: closedPort(), root: join(work, 'p')}, secondary: {key, port: closedPort(), root: join(work, 's')}})
  const r = status(config, true)
  assert.equal(r.status, 1, r.stdout + r.stderr)
  const result = r.json.result
  assert.deepEqual([result.active, result.active_hostname, result.epoch, result.epoch_source, result.epoch_record], [null, null, null, null, null])
  assert.deepEqual([result.nodes.primary.reachable, result.nodes.secondary.reachable], [false, false])
  assert.match(result.error, /no node answered: which one is active cannot be read/)
  assertUnknown(status(config, false), /^Problem: +no node answered/m)
})

describe('ha status with one node answering over a real sshd, the other not', {skip: missingPrerequisite(['root', 'sshd'])}, () => {
  let work: string
  let sshd: TestSshd
  let config: string
  let mounted = false
  const root = () => join(work, 'primary')
  const nodeEpoch = (active: Node, n: number) => `${JSON.stringify({active, at: '2026-11-29T21:00:00.000Z', by: 'root@admin', epoch: n, run_id: `20261129T210000Z-00000${n}`})}\n`

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ha-status-'))
    mkdirSync(join(root(), dataDir), {recursive: true})
    // `ha status` lists the backups with the node's own `ha backup list`: here the built CLI, with this config.
    mkdirSync(join(work, 'bin'))
    writeFileSync(join(work, 'bin/ha'), `#!/bin/sh\nexec '${process.execPath}' '${haBin}' "$@"\n`, {mode: 0o755})
    sshd = await startSshd({env: {HA_CONFIG: join(work, 'ha.yaml'), PATH: `${join(work, 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`}})
    writeFileSync(join(work, 'known_hosts'), `${sshd.knownHostsLine}\n`)
    config = writeConfig(work, {primary: {key: sshd.clientKey, port: sshd.port, root: root()}, secondary: {key: sshd.clientKey, port: closedPort(), root: join(work, 'secondary')}})
  })

  after(async () => {
    await sshd?.stop()
    if (mounted) execFileSync('umount', [join(root(), dataDir)])
    rmSync(work, {force: true, recursive: true})
  })

  test('the node that answers holds no storage, even with an epoch noted on it: unknown, exit 1, naming the silent node', () => {
    for (const note of [undefined, nodeEpoch('primary', 3)]) {
      const file = join(root(), 'var/lib/ha/epoch.json')
      if (note) {
        mkdirSync(dirname(file), {recursive: true})
        writeFileSync(file, note)
      }

      const r = status(config, true)
      assert.equal(r.status, 1, r.stdout + r.stderr)
      assert.equal(r.json.result.active, null, `note ${note}: the secondary may have taken over since`)
      assert.equal(r.json.result.epoch, null)
      assert.equal(r.json.result.epoch_source, null)
      assert.deepEqual([r.json.result.nodes.primary.reachable, r.json.result.nodes.secondary.reachable], [true, false])
      assert.match(r.json.result.error, /^secondary does not answer, and primary does not hold the storage: which node is active cannot be confirmed from primary alone$/)
      assertUnknown(status(config, false), /^Problem: +secondary does not answer/m)
      rmSync(file, {force: true})
    }
  })

  test('the node that answers holds the storage and the epoch on it names that node: confirmed, from the storage', () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'ha-status-data', join(root(), dataDir)])
    mounted = true
    mkdirSync(join(root(), dataDir, '.ha'), {recursive: true})
    writeFileSync(join(root(), dataDir, '.ha/epoch.json'), nodeEpoch('primary', 2))
    const r = status(config, true)
    assert.deepEqual([r.json.result.active, r.json.result.epoch, r.json.result.epoch_source], ['primary', 2, 'storage'])
    assert.equal(r.json.result.nodes.primary.storage_attached, true)
    assert.match(status(config, false).stdout, /^Active: +primary \(ctl-primary\)\nEpoch: +2 \(from the shared storage\)$/m)
  })

  test('the newest backup is the newest by the archives\' own sequence, not by created_at (a node whose clock ran ahead stamped an older one later)', async () => {
    // Runs after the test above: the storage is mounted on the primary, with the epoch naming it.
    const dir = join(root(), dataDir, '.ha/backups')
    mkdirSync(dir, {recursive: true})
    const saved = [{content: 'ctl-primary\n', gid: 0, group: 'root', mode: 0o644, path: '/etc/hostname', uid: 0, user: 'root'}]
    // seq 6 was made while the clock was a month ahead; seq 7 an hour ago, after it was set right.
    const skewed = {createdAt: new Date(Date.now() + 30 * 86_400_000).toISOString(), id: '20270101T000000Z-0006', seq: 6}
    const newest = {createdAt: new Date(Date.now() - 3_600_000).toISOString(), id: '20261130T090000Z-0007', seq: 7}
    for (const a of [skewed, newest]) await writeCrafted(join(dir, `${a.id}.tar.gz`), craftBackup(saved, a))
    const r = status(config, true)
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.newest_backup?.id, newest.id, JSON.stringify(r.json.result))
    assert.equal(r.json.result.newest_backup.created_at, newest.createdAt)
    assert.match(status(config, false).stdout, /^Backup: +20261130T090000Z-0007, 60m old/m)
  })

  test('a newest backup stamped ahead of this machine\'s clock is said to be so, never given a negative age', async () => {
    const dir = join(root(), dataDir, '.ha/backups')
    const saved = [{content: 'ctl-primary\n', gid: 0, group: 'root', mode: 0o644, path: '/etc/hostname', uid: 0, user: 'root'}]
    const ahead = {createdAt: new Date(Date.now() + 10 * 60_000).toISOString(), id: '20261130T100000Z-0008', seq: 8}
    await writeCrafted(join(dir, `${ahead.id}.tar.gz`), craftBackup(saved, ahead))
    const r = status(config, true)
    assert.equal(r.json.result.newest_backup?.id, ahead.id)
    assert.ok(r.json.result.newest_backup.age_s < 0, 'the JSON keeps the age as measured: negative, ahead of this clock')
    const text = status(config, false).stdout
    assert.match(text, /^Backup: +20261130T100000Z-0008, stamped (9|10)m ahead of this machine's clock \(a clock is off: ha check's clock_skew row compares the nodes\)$/m)
    assert.doesNotMatch(text, /-\d+s old/)
  })
})

import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import type {CheckItem, CheckReport} from '../../src/check/types.js'
import {haBin} from '../helpers/cli.js'
import {closedPort, loopbackDataDir, type PairNode, writeLoopbackConfig as writeConfig} from '../helpers/loopback-pair.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd, type TestSshd} from '../helpers/sshd.js'

/**
 * What `ha check` says about the storage when it does not know, or when what is mounted at
 * data_dir is not the storage: through the built CLI, nodes at closed loopback ports or behind
 * real sshds on 127.0.0.1, data_dir a real tmpfs mount.
 */
const dataDir = loopbackDataDir
type Node = PairNode

function check(config: string): Record<string, CheckItem> & {report: CheckReport} {
  const r = spawnSync(process.execPath, [haBin, 'check', '--json', '--config', config], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}, timeout: 60_000})
  const report = JSON.parse(r.stdout).result as CheckReport
  const rows = Object.fromEntries(report.checks.map((c) => [c.node ? `${c.id}:${c.node}` : c.id, c]))
  return Object.assign(rows, {report})
}

test('no node answers: the backup row says where the storage is is not known, never "attached to no node"', (t) => {
  const work = mkdtempSync(join(tmpdir(), 'ha-check-unknown-'))
  t.after(() => rmSync(work, {force: true, recursive: true}))
  const key = join(work, 'id')
  makeKey(key)
  writeFileSync(join(work, 'known_hosts'), '')
  const rows = check(writeConfig(work, {primary: {key, port: closedPort(), root: join(work, 'p')}, secondary: {key, port: closedPort(), root: join(work, 's')}}))
  assert.doesNotMatch(rows.backup_age.summary, /attached to no node/)
  assert.equal(rows.backup_age.summary, 'cannot look for backups: whether the storage is attached to primary and secondary is not known (see the storage row)')
})

describe('ha check with real sshds: the storage that is not there, or not the storage', {skip: missingPrerequisite(['root', 'sshd'])}, () => {
  let work: string
  let nodes: Record<Node, TestSshd>
  const roots = () => ({primary: join(work, 'primary'), secondary: join(work, 'secondary')})
  const mounted: string[] = []
  const mount = (source: string, at: string) => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', source, at])
    mounted.push(at)
  }

  const config = (over: {secondaryPort?: number; device?: string} = {}) =>
    writeConfig(
      work,
      {
        primary: {key: nodes.primary.clientKey, port: nodes.primary.port, root: roots().primary},
        secondary: {key: nodes.secondary.clientKey, port: over.secondaryPort ?? nodes.secondary.port, root: roots().secondary},
      },
      over.device,
    )

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ha-check-unknown-'))
    for (const root of Object.values(roots())) mkdirSync(join(root, dataDir), {recursive: true})
    const [p, s] = await Promise.all([startSshd(), startSshd()])
    nodes = {primary: p, secondary: s}
    writeFileSync(join(work, 'known_hosts'), `${p.knownHostsLine}\n${s.knownHostsLine}\n`)
  })

  after(async () => {
    await Promise.all([nodes?.primary.stop(), nodes?.secondary.stop()])
    for (const at of mounted.reverse()) spawnSync('umount', [at])
    rmSync(work, {force: true, recursive: true})
  })

  test('one node answers without the storage, the other does not answer: the backup row names the node whose storage is not known', () => {
    const rows = check(config({secondaryPort: closedPort()}))
    assert.equal(rows.backup_age.summary, 'cannot look for backups: whether the storage is attached to secondary is not known (see the storage row)')
  })

  test('the standby has a tmpfs at data_dir, not storage.device: roles are decided (the primary holds the storage), the storage row names the wrong filesystem', () => {
    mount('ha-test-shared', join(roots().primary, dataDir))
    mount('ha-test-other', join(roots().secondary, dataDir))
    const rows = check(config({device: 'ha-test-shared'}))
    assert.doesNotMatch(rows.roles.summary, /both nodes/)
    assert.equal(rows.roles.status, 'pass', rows.roles.summary)
    assert.equal(rows.roles.summary, 'primary is active, secondary the standby: no takeover yet: primary holds the storage')
    assert.deepEqual(rows.report.roles, {active: 'primary', epoch: 0, source: 'config', standby: 'secondary'})
    assert.equal(rows.storage.status, 'fail')
    assert.match(rows.storage.summary, /^the wrong filesystem is mounted at data_dir: secondary: \S+ is mounted from ha-test-other, not from storage\.device ha-test-shared$/)
    assert.doesNotMatch(rows.backup_age.summary, /both nodes|no node/)
  })
})

import assert from 'node:assert/strict'
import {appendFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {ha, tempDir} from '../helpers/cli.js'
import {closedPort, loopbackDataDir, type PairNode, writeLoopbackConfig} from '../helpers/loopback-pair.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd, type TestSshd} from '../helpers/sshd.js'

/**
 * `ha failover --plan` when a node cannot be checked: the plan is still printed, from the config,
 * each node it could not check is named by node, hostname and address with what the connection
 * said, and the exit is 3 (0 only when both nodes answered). Through the built CLI, nodes at
 * closed loopback ports or behind real sshds on 127.0.0.1.
 */
type Ports = Record<PairNode, {key: string; port: number; root: string}>

/** The loopback pair's config, with what ha failover needs to plan (services, storage.device). */
function writeConfig(work: string, nodes: Ports): string {
  const path = writeLoopbackConfig(work, nodes, '/dev/ha-test-shared')
  appendFileSync(path, 'services: {start: [/etc/init.d/xvm, start], stop: [/etc/init.d/xvm, stop], status: [/etc/init.d/xvm, status]}\n')
  return path
}

function plan(config: string, work: string, json: boolean) {
  return ha(['failover', '--plan', '--config', config, ...(json ? ['--json'] : [])], {env: {HA_FAILOVER_DIR: join(work, 'journal')}})
}

const stepIds = ['preflight', 'final-backup', 'stop-services', 'release-storage', 'acquire-storage', 'restore-takeover', 'start-services', 'verify']

/** Every path under `dir` with its type, size, mode and mtime: what "nothing changed" is checked against. */
function tree(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      const s = lstatSync(p)
      out.push(`${p} ${s.mode} ${s.size} ${s.mtimeMs}`)
      if (s.isDirectory()) walk(p)
    }
  }

  walk(dir)
  return out
}

test('no node answers: the plan from the config, both nodes named with their address and why, exit 3; --json is one envelope saying so', (t) => {
  const work = tempDir(t, 'ha-failover-plan-')
  const key = join(work, 'id')
  makeKey(key)
  writeFileSync(join(work, 'known_hosts'), '')
  const ports = {primary: closedPort(), secondary: closedPort()}
  const config = writeConfig(work, {primary: {key, port: ports.primary, root: join(work, 'p')}, secondary: {key, port: ports.secondary, root: join(work, 's')}})

  const human = plan(config, work, false)
  assert.equal(human.status, 3, human.stdout + human.stderr)
  assert.match(human.stdout, /^Failover ctl-primary \(primary\) → ctl-secondary \(secondary\) \(epoch unknown\)$/m)
  for (const n of ['primary', 'secondary'] as const) {
    assert.match(human.stdout, new RegExp(`^${n} \\(ctl-${n}, root@127\\.0\\.0\\.1:${ports[n]}\\): not checked: connection refused`, 'm'))
  }

  assert.match(human.stdout, /^The plan below is from the config only: it was not checked against the nodes\.$/m)
  assert.match(human.stdout, /^Direction not confirmed: no node answered.*the config's primary\. The other direction: ha failover --plan --from secondary$/m)
  for (const id of stepIds) assert.match(human.stdout, new RegExp(`^ *\\d+\\. ${id} — `, 'm'), `step ${id} in the plan`)
  assert.doesNotMatch(human.stderr, /error/)

  const json = plan(config, work, true)
  assert.equal(json.status, 3, json.stdout + json.stderr)
  assert.ok(json.json, `stdout is one JSON envelope:\n${json.stdout}`)
  assert.equal(json.stderr, '')
  assert.equal(json.json.status, 3)
  const r = json.json.result
  assert.equal(r.verified, false)
  assert.equal(r.direction_confirmed, false)
  assert.equal(r.epoch, null)
  assert.deepEqual([r.from, r.to], ['primary', 'secondary'])
  assert.deepEqual(
    r.unchecked.map((u: {address: string; hostname: string; kind: string; node: string}) => [u.node, u.hostname, u.address, u.kind]),
    [['primary', 'ctl-primary', `root@127.0.0.1:${ports.primary}`, 'refused'], ['secondary', 'ctl-secondary', `root@127.0.0.1:${ports.secondary}`, 'refused']],
  )
  assert.deepEqual(r.plan.map((s: {id: string}) => s.id).filter((id: string) => stepIds.includes(id)), stepIds)

  // The failover itself still refuses to start: the plan's leniency is only the plan's.
  const run = ha(['failover', '--yes', '--json', '--config', config], {env: {HA_FAILOVER_DIR: join(work, 'journal')}})
  assert.equal(run.status, 1, run.stdout + run.stderr)
  assert.equal(run.json?.result, undefined)
})

describe('ha failover --plan with real sshds', {skip: missingPrerequisite(['root', 'sshd'])}, () => {
  let work: string
  let nodes: Record<PairNode, TestSshd>
  const roots = () => ({primary: join(work, 'primary'), secondary: join(work, 'secondary')})
  const config = () =>
    writeConfig(work, {
      primary: {key: nodes.primary.clientKey, port: nodes.primary.port, root: roots().primary},
      secondary: {key: nodes.secondary.clientKey, port: nodes.secondary.port, root: roots().secondary},
    })

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ha-failover-plan-'))
    for (const root of Object.values(roots())) {
      mkdirSync(join(root, loopbackDataDir), {recursive: true})
      mkdirSync(join(root, 'var/lib/ha'), {recursive: true})
    }

    const [p, s] = await Promise.all([startSshd(), startSshd()])
    nodes = {primary: p, secondary: s}
  })

  after(async () => {
    await Promise.all([nodes?.primary.stop(), nodes?.secondary.stop()])
    rmSync(work, {force: true, recursive: true})
  })

  test('both nodes answer: the plan, verified, exit 0, nothing unchecked', () => {
    writeFileSync(join(work, 'known_hosts'), `${nodes.primary.knownHostsLine}\n${nodes.secondary.knownHostsLine}\n`)
    const r = plan(config(), work, true)
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.deepEqual([r.json!.result.verified, r.json!.result.unchecked, r.json!.result.direction_confirmed, r.json!.result.epoch], [true, [], true, 0])
    const human = plan(config(), work, false)
    assert.equal(human.status, 0, human.stdout + human.stderr)
    assert.doesNotMatch(human.stdout, /not checked|config only/)
  })

  test('the secondary presents a host key known_hosts does not list for it: refused, named as not checked, exit 3; nothing on either node changed', () => {
    // The secondary's address is listed with another key (the primary's): a changed host key.
    writeFileSync(join(work, 'known_hosts'), `${nodes.primary.knownHostsLine}\n[127.0.0.1]:${nodes.secondary.port} ${nodes.primary.hostKeyLine}\n`)
    const before = {primary: tree(roots().primary), secondary: tree(roots().secondary)}

    const human = plan(config(), work, false)
    assert.equal(human.status, 3, human.stdout + human.stderr)
    assert.match(human.stdout, new RegExp(`^secondary \\(ctl-secondary, root@127\\.0\\.0\\.1:${nodes.secondary.port}\\): not checked: THE HOST KEY HAS CHANGED`, 'm'))
    assert.doesNotMatch(human.stdout, /^primary \(ctl-primary/m, 'the primary answered: it is not named as unchecked')
    assert.match(human.stdout, /^Direction not confirmed: secondary does not answer, and primary does not hold the storage/m)
    assert.match(human.stdout, /^ *\d+\. acquire-storage — /m)

    const json = plan(config(), work, true)
    assert.equal(json.status, 3, json.stdout + json.stderr)
    assert.equal(json.stderr, '')
    const r = json.json!.result
    assert.equal(r.verified, false)
    assert.deepEqual(r.unchecked.map((u: {kind: string; node: string}) => [u.node, u.kind]), [['secondary', 'host_key_changed']])
    assert.match(r.unchecked[0].reason, /^THE HOST KEY HAS CHANGED/)
    assert.ok(r.unchecked[0].actions.length > 0, 'says what to do about it')

    assert.deepEqual({primary: tree(roots().primary), secondary: tree(roots().secondary)}, before, '--plan changes nothing on a node')
  })
})

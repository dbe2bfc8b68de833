import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {rmSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'

import {labDown, labName, labNetns, type LabNode, labPaths} from '../../src/lab/lab.js'
import {ha, haBin, type HaRun} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {clusterLab, clusterNames} from './cluster-helpers.js'

/**
 * Issue 17's proof of the planned switchover: `ha failover` on the cluster lab, whose group is
 * exactly what `ha cluster setup --apply` makes of the lab's ha.yaml (storage, service IP,
 * ocf:ha:controller), run from the admin side with that same config (cluster.manager: pacemaker).
 * Judged from outside: the MACs answering ARP for the service IP (sampled every 100 ms), what a
 * client of the service IP gets, a canary written before, the epoch on the storage, crm_mon and
 * the CIB's constraints; and `ha status` / `ha check` agreeing with crm_mon. Its own lab.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'pacemaker'])
const labDir = `/tmp/ha-lab-${labName()}-switchover-${process.pid}`
const {epoch, inNode, macs, runningOn, runsOn, serviceAnswer, within} = clusterLab(labDir)
const other = (node: LabNode): LabNode => (node === 'primary' ? 'secondary' : 'primary')
const fromAdmin = {prefix: ['ip', 'netns', 'exec', labNetns.admin], timeoutMs: 600_000}

/** ha from the admin side with the lab's config; under --json a failover's step lines first, then the envelope. */
function run(...args: string[]): HaRun & {events: Array<Record<string, unknown>>} {
  return envelope(ha([...args, '--config', labPaths(labDir).config], fromAdmin))
}

/** The same without blocking this process (the ARP sampler runs meanwhile). */
function runAsync(...args: string[]): Promise<HaRun & {events: Array<Record<string, unknown>>}> {
  const argv = [...fromAdmin.prefix, process.execPath, haBin, ...args, '--config', labPaths(labDir).config]
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b) => (stdout += b))
    child.stderr.on('data', (b) => (stderr += b))
    child.on('close', (status) => resolve(envelope({json: undefined, status, stderr, stdout})))
  })
}

function envelope(r: HaRun): HaRun & {events: Array<Record<string, unknown>>} {
  const lines = r.stdout.split('\n')
  const isEvent = (l: string) => l.startsWith('{"type":"step"')
  let json = r.json
  try {
    json ??= JSON.parse(lines.filter((l) => !isEvent(l)).join('\n'))
  } catch {}

  return {...r, events: lines.filter(isEvent).map((l) => JSON.parse(l)), json}
}

/**
 * ARP for the service IP from the admin side, a probe every 100 ms until stopped. Each listens for
 * two replies (so two hosts answering one broadcast are both heard) and counts those within 250 ms
 * of its probe (iputils arping 20221126 takes whole seconds for -w, so it listens up to 1 s).
 */
function arpSampler() {
  const samples: Array<{at: number; macs: string[]; raw: string}> = []
  const pending: Array<Promise<void>> = []
  const timer = setInterval(() => {
    const at = Date.now()
    const argv = ['netns', 'exec', labNetns.admin, 'arping', '-c', '2', '-w', '1', '-I', 'ha-lab-br0', '198.18.0.100']
    pending.push(
      new Promise((resolve) => {
        const child = spawn('ip', argv, {stdio: ['ignore', 'pipe', 'ignore']})
        let out = ''
        child.stdout.on('data', (b) => (out += b))
        child.on('close', () => {
          // An answer to this probe comes within ms on the lab's bridge; a reply heard later is the
          // new holder's announcement (IPaddr2's unsolicited ARP), not an answer to this probe.
          const answers = [...out.matchAll(/reply from [\d.]+ \[([0-9A-Fa-f:]+)\]\s+([\d.]+)ms/g)].filter((m) => Number(m[2]) <= 250)
          samples.push({at, macs: [...new Set(answers.map((m) => m[1].toLowerCase()))], raw: out})
          resolve()
        })
      }),
    )
  }, 100)
  return {
    async stop() {
      clearInterval(timer)
      await Promise.all(pending)
      return samples.sort((a, b) => a.at - b.at)
    },
  }
}

type Status = {active: string; cluster: {controller: {agent: string; node: string}; group: {node: string}; quorate: boolean}; epoch: number}

describe('ha failover on a Pacemaker cluster run by ocf:ha:controller: a planned switchover', {skip}, () => {
  let canary = ''
  before(async () => {
    const up = ha(['lab', 'up', '--cluster', '--lab-dir', labDir, '--json'], {timeoutMs: 120_000})
    assert.equal(up.status, 0, up.stdout + up.stderr)
    assert.ok(await within(60, async () => ((await inNode('primary', ['crm_mon', '-1'])).stdout.includes('Online: [ ctl-a ctl-b ]') ? true : undefined)), 'the cluster formed')
    const setup = await inNode('primary', ['ha', 'cluster', 'setup', '--apply'])
    assert.equal(setup.code, 0, setup.stdout + setup.stderr)
    assert.ok(await runsOn('primary', 60), 'the service starts on the primary')
    canary = randomBytes(16).toString('hex')
    assert.equal((await inNode('primary', ['sh', '-c', `echo ${canary} > /var/opt/sun/xvm/service/canary.txt && sync`])).code, 0)
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
  })

  it('ha status and ha check show the cluster\'s view, and ha\'s epoch agrees with it', async () => {
    const where = (await runningOn())![0]
    const status = run('status', '--json')
    assert.equal(status.status, 0, status.stdout + status.stderr)
    const s = status.json!.result as Status
    assert.equal(s.cluster.quorate, true)
    assert.deepEqual([s.active, s.cluster.controller.node, s.cluster.group.node, s.cluster.controller.agent], [where, where, where, 'ocf:ha:controller'])
    const check = run('check', '--json')
    const rows = (check.json!.result as {checks: Array<{id: string; status: string; summary: string}>}).checks.filter((c) => c.id.startsWith('cluster'))
    assert.deepEqual(rows.map((c) => `${c.id} ${c.status}`), ['cluster_quorum pass', 'cluster_nodes pass', 'cluster_controller pass', 'cluster_failures pass', 'cluster_fencing pass', 'cluster_agrees pass', 'cluster_storage_stop pass'], JSON.stringify(rows, null, 1))
    assert.match(rows.at(-2)!.summary, new RegExp(`^both say ${where} \\(${clusterNames[where]}\\): ha's epoch \\d+, Pacemaker runs ha-controller there$`))
  })

  it('ha restore on a node is refused while the cluster manages the pair, and runs by hand only in maintenance mode', async () => {
    const where = (await runningOn())![0]
    // A backup id that does not exist: past the refusal, restore stops at it and changes nothing.
    const restore = async () => JSON.parse((await inNode(where, ['ha', 'restore', '--yes', '--json', '--backup', 'no-such-backup'])).stdout) as {error: {message: string}; status: number; warnings: string[]}
    const refused = await restore()
    assert.equal(refused.status, 2)
    assert.match(refused.error.message, /^ha restore is refused: \/etc\/ha\/ha\.yaml has cluster\.manager: pacemaker/)
    await inNode(where, ['crm_attribute', '--type', 'crm_config', '--name', 'maintenance-mode', '--update', 'true'])
    try {
      const byHand = await restore()
      assert.doesNotMatch(byHand.error.message, /is refused/)
      assert.match(byHand.error.message, /no-such-backup/)
      assert.ok(byHand.warnings.some((w) => w.startsWith('the cluster is in maintenance mode (crm_mon on this node): ha restore runs by hand')), JSON.stringify(byHand.warnings))
    } finally {
      await inNode(where, ['crm_attribute', '--type', 'crm_config', '--name', 'maintenance-mode', '--update', 'false'])
    }

    assert.ok(await runsOn(where, 10), 'the service still runs where it ran')
  })

  it('ha failover moves the service and back: one MAC at every sample, the service answers from the other node, the canary intact, the epoch one further, no move constraint left', async () => {
    for (let round = 0; round < 2; round++) {
      const from = (await runningOn())![0]
      const to = other(from)
      const before = await epoch(from)
      const sampler = arpSampler()
      const r = await runAsync('failover', '--yes', '--json')
      // The sampler runs on until a client is served by the new node, and a little after.
      const served = await within(10, async () => ((await serviceAnswer())?.hostname === clusterNames[to] ? true : undefined))
      await new Promise((resolve) => setTimeout(resolve, 600))
      const samples = await sampler.stop()
      assert.equal(r.status, 0, r.stdout + r.stderr)
      assert.ok(served, 'a client of the service IP is served by the other node')
      const result = r.json!.result as {from: string; steps: Array<{duration_ms: number; id: string; status: string}>; to: string; verify: {ha_view: string; service: string}; waiting_ms: number; wall_ms: number}
      assert.deepEqual([result.from, result.to], [from, to])
      assert.deepEqual(result.steps.map((x) => `${x.id} ${x.status}`), ['preflight done', 'move done', 'wait done', 'verify done', 'clear done'])
      // The wire: never two MACs for the service IP, the last ones the new node's.
      assert.deepEqual(samples.filter((x) => x.macs.length > 1), [], `two nodes answered ARP for the service IP at once: ${JSON.stringify(samples.filter((x) => x.macs.length > 1).slice(0, 3))} ${JSON.stringify(await macs())}`)
      assert.deepEqual(samples.at(-1)?.macs, [(await macs())[to].toLowerCase()])
      assert.ok(samples.length > 10, `${samples.length} samples`)
      assert.equal((await inNode(to, ['cat', '/var/opt/sun/xvm/service/canary.txt'])).stdout.trim(), canary)
      const after = await epoch(to)
      assert.deepEqual([after.active, after.epoch], [to, before.epoch + 1], 'the epoch on the storage moved forward once')
      assert.match(result.verify.ha_view, new RegExp(`^ha's epoch ${after.epoch} names ${to} active$`))
      assert.ok(await runsOn(to, 1), 'crm_mon runs the controller on the other node')
      assert.doesNotMatch((await inNode(to, ['cibadmin', '--query', '--scope', 'constraints'])).stdout, /cli-(prefer|ban)-/, 'no move constraint left')
      const status = run('status', '--json').json!.result as Status
      assert.deepEqual([status.active, status.cluster.controller.node], [to, to], 'ha status: ha\'s view and Pacemaker\'s agree')
      const step = (id: string) => result.steps.find((x) => x.id === id)!.duration_ms
      console.log(`# ha failover ${clusterNames[from]} -> ${clusterNames[to]} through Pacemaker: ${result.wall_ms} ms (wait for the cluster ${step('wait')} ms, verify ${step('verify')} ms, ha's own ${result.wall_ms - result.waiting_ms} ms); ${samples.length} ARP samples`)
    }
  })

  it('a mount whose /proc/mounts line holds the storage\'s name: ha check names it, ha failover refuses, and Pacemaker\'s own move shows the Filesystem agent unmounting exactly it', async () => {
    const where = (await runningOn())![0]
    const to = other(where)
    const bootId = async () => (await inNode(where, ['cat', '/proc/sys/kernel/random/boot_id'])).stdout.trim()
    const boot = await bootId()
    // A filesystem of the node's own named as /dev/sdb1 and /dev/sdb10 would be beside a storage on /dev/sdb.
    assert.equal((await inNode(where, ['sh', '-c', 'mkdir -p /srv/old && mount -t tmpfs /dev/sdb-old /srv/old'])).code, 0)
    try {
      const check = run('check', '--json')
      const row = (check.json!.result as {checks: Array<{actions: string[]; id: string; status: string; summary: string}>}).checks.find((c) => c.id === 'cluster_storage_stop')
      assert.equal(row?.status, 'fail', JSON.stringify(row))
      assert.match(row!.summary, new RegExp(`^stopping the storage on ${where} \\(${clusterNames[where]}\\), Pacemaker's Filesystem agent would also unmount /srv/old \\(/dev/sdb-old\\)`))
      const refused = run('failover', '--yes', '--json')
      assert.equal(refused.status, 1, refused.stdout + refused.stderr)
      assert.match(refused.json!.error!.message, new RegExp(`^preflight: nothing was moved: stopping the storage on ${clusterNames[where]}, Pacemaker's Filesystem agent would also unmount /srv/old`))
      assert.ok(await runsOn(where, 1), 'the service still runs where it ran')
      // The real agent agrees: Pacemaker moves the group by itself, and the Filesystem agent's stop unmounts /srv/old too.
      await inNode(where, ['crm_resource', '--move', '--resource', 'ha-service', '--node', clusterNames[to]])
      try {
        assert.ok(await runsOn(to, 60), 'the group moved')
      } finally {
        await inNode(where, ['crm_resource', '--clear', '--resource', 'ha-service'])
      }

      assert.equal((await inNode(where, ['mountpoint', '-q', '/srv/old'])).code, 32, 'the agent unmounted /srv/old along with the storage')
      assert.match((await inNode(where, ['cat', '/var/log/pacemaker/pacemaker.log'])).stdout, /Trying to unmount \/srv\/old/)
      assert.equal(await bootId(), boot, 'the node was not fenced: /srv/old was not busy')
    } finally {
      await inNode(where, ['sh', '-c', 'mountpoint -q /srv/old && umount /srv/old; rmdir /srv/old'])
    }
  })

  it('two admins run ha failover at once: one switches over, the other is refused by the pair\'s claim and moves nothing; the group moved once', async () => {
    const from = (await runningOn())![0]
    const to = other(from)
    const before = await epoch(from)
    const [a, b] = await Promise.all([runAsync('failover', '--yes', '--json'), runAsync('failover', '--yes', '--json')])
    const runs = [a, b]
    const done = runs.filter((r) => r.status === 0)
    assert.equal(done.length, 1, runs.map((r) => `exit ${r.status}: ${r.stdout.slice(-400)}`).join('\n'))
    const refused = runs.find((r) => r.status !== 0)!
    const error = (refused.json as {error?: {message: string}} | undefined)?.error?.message ?? refused.stderr
    // Refused at once by the claim (exit 11, the holder named), or, had it come after, by the group having moved.
    assert.ok(
      (refused.status === 11 && /^the pair is claimed by run \S+ \(switchover (primary|secondary) → (primary|secondary)\)/.test(error)) || /it moved since this switchover looked; nothing was moved/.test(error),
      `exit ${refused.status}: ${error}`,
    )
    assert.ok(await runsOn(to, 10), 'the group runs on the other node')
    const after = await epoch(to)
    assert.deepEqual([after.active, after.epoch], [to, before.epoch + 1], 'the epoch moved forward once')
    assert.doesNotMatch((await inNode(to, ['cibadmin', '--query', '--scope', 'constraints'])).stdout, /cli-(prefer|ban)-/, 'no move constraint left')
    // Neither run left its claim behind: the next switchover is not refused.
    const status = run('status', '--json').json!.result as Status & {claim?: unknown}
    assert.equal(status.claim ?? null, null, JSON.stringify(status.claim))
  })
})

import assert from 'node:assert/strict'
import {randomUUID} from 'node:crypto'
import {existsSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {parse, stringify} from 'yaml'

import {runInNode} from '../../src/lab/container.js'
import {guestDomainXml, heartbeats, serialLogPath} from '../../src/lab/guest-domain.js'
import {parseVirshList} from '../../src/lab/guests.js'
import {labBoot, labDown, labHalt, labName, type LabNode, nodePaths} from '../../src/lab/lab.js'
import {nodeProcesses} from '../../src/lab/power.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {failoverLab, type Run, stepStarted} from './failover-helpers.js'

/**
 * Issue 18, the product side: ha failover moves the lab's guests with the service, judged as an
 * admin would judge it: the guest's own heartbeat on its serial port (in each node's /var/log),
 * both nodes' virsh list sampled while ha runs, the QEMU processes of each node, domjobinfo.
 * Its own guest lab (ha lab up --guests: a libvirtd in each node, the service mode, the lab's
 * heartbeat guest listed in ha.yaml), always taken down.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'libvirt'])
const labDir = `/tmp/ha-lab-${labName()}-guests-failover-${process.pid}`
const journalDir = `${labDir}-journal`
const {haAdmin, lab, startHa} = failoverLab(labDir, journalDir)
const [g1, g2] = ['heartbeat1', 'heartbeat2']

const virsh = (node: LabNode, ...args: string[]) => runInNode(labDir, node, ['virsh', '-q', '-c', 'qemu:///system', ...args], {okCodes: [1], timeoutMs: 60_000})
const domains = async (node: LabNode) => parseVirshList((await runInNode(labDir, node, ['virsh', '-c', 'qemu:///system', 'list', '--all'], {timeoutMs: 20_000})).stdout)
const stateOf = async (node: LabNode, guest: string) => (await domains(node)).find((d) => d.name === guest)?.state ?? 'absent'
const serialText = (node: LabNode, guest: string) => {
  const file = join(nodePaths(labDir, node).root, serialLogPath(guest))
  return existsSync(file) ? readFileSync(file, 'latin1') : ''
}

const qemuOf = async (node: LabNode, guest: string) => (await nodeProcesses(labDir, node)).filter((p) => p.args.startsWith('/usr/bin/qemu-system-x86_64') && p.args.includes(`guest=${guest}`)).length

async function within<T>(seconds: number, probe: () => Promise<T | undefined>): Promise<T | undefined> {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const found = await probe().catch(() => undefined)
    if (found !== undefined) return found
    await sleep(200)
  }

  return undefined
}

/** Defines a lab guest on both nodes from one XML, one UUID (as an admin keeps each clustered guest defined on both). */
async function defineOnBoth(guest: string): Promise<void> {
  const xml = guestDomainXml(guest).replace('  <name>', `  <uuid>${randomUUID()}</uuid>\n  <name>`)
  for (const node of ['primary', 'secondary'] as const) {
    writeFileSync(join(nodePaths(labDir, node).root, 'root', `${guest}.xml`), xml)
    const r = await virsh(node, 'define', `/root/${guest}.xml`)
    assert.equal(r.code, 0, r.stderr)
  }
}

async function startOn(node: LabNode, guest: string): Promise<void> {
  const r = await virsh(node, 'start', guest)
  assert.equal(r.code, 0, r.stderr)
  assert.ok(await within(30, async () => (heartbeats(serialText(node, guest)).length >= 2 ? true : undefined)), `${guest} does not beat on ${node}`)
}

/** Both nodes' view of the guests, sampled until `done` ends: [at, primary's state, secondary's state] per guest. */
function sampleWhile(done: Promise<unknown>, guests: string[], read: (node: LabNode, guest: string) => Promise<string>) {
  const samples: Array<{guest: string; primary: string; secondary: string}> = []
  let running = true
  void done.finally(() => (running = false))
  const loop = (async () => {
    while (running) {
      for (const guest of guests) {
        // The node taking over first: a copy that runs there, then still on the other, ran twice.
        const [secondary, primary] = [await read('secondary', guest).catch(() => 'unreadable'), await read('primary', guest).catch(() => 'unreadable')]
        samples.push({guest, primary, secondary})
      }
    }
  })()
  return async () => {
    await loop
    return samples
  }
}

/** The journal's data records of one step, merged (what ha failover --resume reads). */
function journalled(step: string): Record<string, any> {
  const data: Record<string, any> = {}
  for (const file of readdirSync(journalDir).filter((f) => f.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(journalDir, file), 'utf8').split('\n').filter(Boolean)) {
      const record = JSON.parse(line)
      if (record.type === 'data' && record.step === step) Object.assign(data, record.data)
    }
  }

  return data
}

/** The active node, as ha status says. */
function activeNode(): LabNode {
  const status = haAdmin(['status', '--json'])
  assert.equal(status.status, 0, status.stdout + status.stderr)
  return status.envelope!.result.active
}

const other = (node: LabNode): LabNode => (node === 'primary' ? 'secondary' : 'primary')
const hostOf = {primary: 'ctl-a (primary)', secondary: 'ctl-b (secondary)'} as const
const addressOf = {primary: '198.18.0.2', secondary: '198.18.0.3'} as const

function planned(plan: Run, step: string): string[] {
  return (plan.envelope!.result.plan as Array<{actions: string[]; id: string}>).find((s) => s.id === step)?.actions ?? []
}

describe('ha failover moves the guests (ha lab up --guests)', {skip}, () => {
  before(async () => {
    rmSync(journalDir, {force: true, recursive: true})
    const r = ha(['lab', 'up', '--guests', '--lab-dir', labDir, '--json'], {timeoutMs: 180_000})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    await defineOnBoth(g1)
    await startOn('primary', g1)
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
    rmSync(journalDir, {force: true, recursive: true})
  })

  it('a planned failover migrates the guest live: its heartbeat goes on on the node taking over, never running on both, downtime from domjobinfo', async () => {
    const check = haAdmin(['config', 'check'])
    assert.equal(check.status, 0, check.stdout + check.stderr)
    // Where it runs and whether the standby can hold it, as ha status and ha check say.
    const status = haAdmin(['status'])
    assert.match(status.stdout, new RegExp(`^Guest: +${g1} \\(priority 10\\): runs on primary \\(primary running, secondary shut off\\); a failover to secondary would start it there \\(16 MiB of memory\\)$`, 'm'), status.stdout)
    const rows = (haAdmin(['check', '--json']).envelope!.result.checks as Array<{id: string; status: string; summary: string; title: string}>).filter((c) => c.id === 'guest')
    assert.deepEqual(rows.map((r) => [r.title, r.status, r.summary]), [[`Guest ${g1}`, 'pass', 'runs on primary; a failover starts it on secondary: 16 MiB of memory']])
    const plan = haAdmin(['failover', '--plan', '--json'])
    assert.equal(plan.status, 0, plan.stderr)
    assert.ok(planned(plan, 'guests-leave').includes(`ctl-a (primary)$ virsh -c qemu:///system migrate --live --persistent ${g1} qemu+tcp://198.18.0.3/system`), planned(plan, 'guests-leave').join('\n'))
    assert.ok(planned(plan, 'guests-start').includes(`ctl-b (secondary)$ virsh -c qemu:///system start ${g1}`))

    const started = Date.now()
    const run = startHa(['failover', '--yes', '--json'])
    const samples = sampleWhile(run.done, [g1], stateOf)
    const result = await run.done
    const all = await samples()
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`)
    const ran = (result.envelope!.result.ran as Array<{action: string; step: string}>).filter((r) => r.step.startsWith('guests-'))
    assert.deepEqual(ran.map((r) => r.action), [`ctl-a (primary)$ virsh -c qemu:///system migrate --live --persistent ${g1} qemu+tcp://198.18.0.3/system`], 'migrated, nothing shut down or started')

    assert.ok(await within(10, async () => (heartbeats(serialText('secondary', g1)).length >= 3 ? true : undefined)))
    const [last, first] = [heartbeats(serialText('primary', g1)).at(-1)!, heartbeats(serialText('secondary', g1))[0]]
    assert.ok(first > last && first <= last + 2, `last heartbeat on the primary ${last}, first on the secondary ${first}`)
    assert.doesNotMatch(serialText('secondary', g1), /booted/, 'not booted again: migrated')
    assert.deepEqual(all.filter((s) => s.primary === 'running' && s.secondary === 'running'), [], 'never running on both')
    assert.ok(all.length >= 5, `${all.length} samples`)
    assert.equal(await stateOf('secondary', g1), 'running')
    assert.equal(await stateOf('primary', g1), 'shut off', 'still defined on the primary, not running')

    const left = journalled('guests-leave')[`guest:${g1}`]
    assert.equal(left.how, 'live')
    const job = (await virsh('secondary', 'domjobinfo', '--completed', g1)).stdout
    assert.equal(Number(/^Total downtime:\s+(\d+)\s+ms$/m.exec(job)?.[1]), left.downtime_ms, 'the downtime journalled is libvirt\'s')
    console.log(`# ha failover with a live guest: ${Date.now() - started} ms in all; migration ${left.elapsed_ms} ms, downtime ${left.downtime_ms} ms (domjobinfo --completed); heartbeat ${last} on the primary, ${first} on the secondary; ${all.length} samples of both virsh lists, none running on both`)
  })

  it('ha failover killed mid-migration: --resume finds the migration in flight, waits for libvirt to end it, and the guest runs exactly once', async () => {
    const [from, to] = ['secondary', 'primary'] as const
    assert.equal(activeNode(), from)
    // 1 MiB/s: the 16 MiB guest takes ~15 s to migrate, time enough to kill ha in the middle.
    assert.equal((await virsh(from, 'migrate-setspeed', g1, '--bandwidth', '1')).code, 0)
    const run = startHa(['failover', '--yes', '--json'])
    assert.ok(await run.when(stepStarted('guests-leave')), run.stdout() + run.stderr())
    const inFlight = await within(20, async () => (/^Job type:\s+Unbounded/m.test((await virsh(from, 'domjobinfo', g1)).stdout) ? true : undefined))
    assert.ok(inFlight, 'the migration runs')
    run.child.kill('SIGKILL')
    const killed = await run.done
    assert.equal(killed.signal, 'SIGKILL')
    assert.match((await virsh(from, 'domjobinfo', g1)).stdout, /^Job type:\s+Unbounded/m, 'still in flight after ha died')

    const samples = (async () => {
      const seen: Array<{primary: string; secondary: string}> = []
      for (let i = 0; i < 400 && seen.filter((x) => x[to] === 'running').length < 5; i++) seen.push({secondary: await stateOf('secondary', g1), primary: await stateOf('primary', g1)})
      return seen
    })()
    const resumed = haAdmin(['failover', '--resume', '--yes', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    assert.deepEqual((await samples).filter((x) => x.primary === 'running' && x.secondary === 'running'), [], 'never running on both')
    assert.equal(await stateOf(to, g1), 'running')
    assert.equal(await stateOf(from, g1), 'shut off')
    const ran = (resumed.envelope!.result.ran as Array<{action: string; step: string}>).filter((r) => r.step.startsWith('guests-'))
    assert.deepEqual(ran, [], 'nothing done twice: the migration libvirt finished is the move')
    assert.ok(await within(10, async () => (heartbeats(serialText(to, g1)).length >= 3 ? true : undefined)))
    const [last, first] = [heartbeats(serialText(from, g1)).at(-1)!, heartbeats(serialText(to, g1))[0]]
    assert.ok(first > last && first <= last + 2, `last heartbeat on the ${from} ${last}, first on the ${to} ${first}: migrated, not restarted`)
  })

  it('a paused guest is never moved: the failover stops before anything moved, and goes on with --resume once it runs again', async () => {
    const [from, to] = [activeNode(), other(activeNode())]
    assert.equal((await virsh(from, 'suspend', g1)).code, 0)
    const refused = haAdmin(['failover', '--yes', '--json'])
    assert.equal(refused.status, 1, `${refused.stdout}\n${refused.stderr}`)
    assert.match(refused.envelope!.error!.message, new RegExp(`${g1} is paused on ${from}: ha never moves a suspended or paused guest`))
    assert.match(refused.envelope!.error!.actions.join('\n'), /resume it on .* \(virsh resume NAME\) or shut it down, then ha failover --resume/)
    assert.deepEqual(refused.events.filter((e) => e.event === 'done').map((e) => e.step), ['preflight', 'final-backup'], 'nothing of the service moved')
    assert.equal(await stateOf(from, g1), 'paused')
    assert.equal(await stateOf(to, g1), 'shut off')

    assert.equal((await virsh(from, 'resume', g1)).code, 0)
    const resumed = haAdmin(['failover', '--resume', '--yes', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    assert.equal(await stateOf(to, g1), 'running')
    assert.equal(await stateOf(from, g1), 'shut off')
  })

  it('the active node halted: failover --fenced restarts the guest on the survivor, and it never runs on both', async () => {
    // The active node, with the guest, dies, guest and all.
    const dead = activeNode()
    const survivor = other(dead)
    await labHalt(dead, {labDir})
    const refused = haAdmin(['failover', '--yes', '--json'])
    assert.equal(refused.status, 4, `${refused.stdout}\n${refused.stderr}`)
    assert.equal(await stateOf(survivor, g1), 'shut off', 'nothing started while the dead node is not confirmed fenced')

    const started = Date.now()
    const run = startHa(['failover', '--yes', '--fenced', dead, '--json'])
    // The halted node has no libvirtd to ask: its QEMU processes are what would run the guest.
    const samples = sampleWhile(run.done, [g1], async (node, guest) => (node === dead ? ((await qemuOf(dead, guest)) > 0 ? 'running' : 'no qemu') : stateOf(node, guest)))
    const result = await run.done
    const all = await samples()
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`)
    assert.ok(await within(30, async () => (heartbeats(serialText(survivor, g1)).length >= 2 ? true : undefined)))
    assert.match(serialText(survivor, g1), /^\r?\nha lab guest: booted\r\nheartbeat 1\r\n/, 'restarted: booted, counting from 1')
    assert.deepEqual(all.filter((s) => s.primary === 'running' && s.secondary === 'running'), [], 'never running on both')
    assert.equal(await stateOf(survivor, g1), 'running')
    const steps = result.events.filter((e) => e.duration_ms !== undefined && e.event !== 'started').map((e) => `${e.step} ${e.duration_ms}`)
    console.log(`# ha failover --fenced with the guest restarted on the survivor: ${Date.now() - started} ms (${steps.join(', ')} ms); ${all.length} samples, none running on both`)

    // The dead node comes back: its copy stays off, and rejoin proves it starts none at boot.
    await labBoot(dead, {labDir})
    assert.equal(await stateOf(dead, g1), 'shut off')
    const rejoin = haAdmin(['rejoin', dead, '--json'])
    assert.equal(rejoin.status, 0, `${rejoin.stdout}\n${rejoin.stderr}`)
    assert.ok(rejoin.events.some((e) => e.step === 'guests-standby'))
    assert.match((await virsh(dead, 'dominfo', g1)).stdout, /^Autostart:\s+disable$/m)
  })

  it('apart: the less favoured guest on the node taking over is shut down before the favoured one arrives, never the two together', async () => {
    const yaml = parse(readFileSync(lab.config, 'utf8'))
    yaml.guests = [
      {...yaml.guests[0], apart: [g2]},
      {disks: 'shared', move: 'restart', name: g2, priority: 1, shutdown: {mode: 'acpi', timeout: '20s'}},
    ]
    const config = `${labDir}/ha-apart.yaml`
    writeFileSync(config, stringify(yaml), {mode: 0o644})
    const [from, to] = [activeNode(), other(activeNode())]
    await defineOnBoth(g2)
    await startOn(to, g2)

    const check = haAdmin(['config', 'check'], {}, config)
    assert.equal(check.status, 0, check.stdout + check.stderr)
    const run = haAdmin(['failover', '--yes', '--json'], {}, config)
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`)
    const ran = (run.envelope!.result.ran as Array<{action: string; step: string}>).filter((r) => r.step.startsWith('guests-')).map((r) => r.action)
    const shut = ran.indexOf(`${hostOf[to]}$ virsh -c qemu:///system shutdown --mode acpi ${g2}`)
    const migrate = ran.indexOf(`${hostOf[from]}$ virsh -c qemu:///system migrate --live --persistent ${g1} qemu+tcp://${addressOf[to]}/system`)
    assert.ok(shut !== -1 && migrate > shut, `the less favoured one shut down first, then the favoured one migrated: ${ran.join('; ')}`)
    assert.equal(await stateOf(to, g1), 'running')
    assert.equal(await stateOf(to, g2), 'shut off')
    assert.equal(await stateOf(from, g2), 'shut off', 'not started anywhere by ha')
  })

  it('ha failover --abort after the guests left: the guest shut down for the failover starts again on the active node', async () => {
    const active = activeNode()
    const yaml = parse(readFileSync(lab.config, 'utf8'))
    yaml.guests = [{...yaml.guests[0], move: 'restart'}]
    const config = `${labDir}/ha-restart.yaml`
    writeFileSync(config, stringify(yaml), {mode: 0o644})
    assert.equal(await stateOf(active, g1), 'running')
    // ha dies in the step after the guests left (its first action run), as a crash would leave it.
    const killed = haAdmin(['failover', '--yes', '--json'], {HA_FAILOVER_TEST_KILL_IN: 'stop-services'}, config)
    assert.equal(killed.signal, 'SIGKILL')
    assert.equal(await stateOf(active, g1), 'shut off', 'shut down for the failover')
    const aborted = haAdmin(['failover', '--abort', '--yes', '--json'], {}, config)
    assert.equal(aborted.status, 0, `${aborted.stdout}\n${aborted.stderr}`)
    assert.ok(aborted.events.some((e) => e.step === 'put-back-guests' && e.event === 'done'), JSON.stringify(aborted.events))
    assert.equal(await stateOf(active, g1), 'running', 'started again where it was')
    assert.equal(await stateOf(other(active), g1), 'shut off')
    assert.equal(activeNode(), active)
  })
})

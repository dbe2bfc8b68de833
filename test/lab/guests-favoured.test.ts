import assert from 'node:assert/strict'
import {randomUUID} from 'node:crypto'
import {existsSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {parse, stringify} from 'yaml'

import {runInNode} from '../../src/lab/container.js'
import {guestDomainXml, heartbeats, serialLogPath} from '../../src/lab/guest-domain.js'
import {hugePagesMiB, parseVirshList} from '../../src/lab/guests.js'
import {labDown, labName, labNetns, type LabNode, nodePaths} from '../../src/lab/lab.js'
import {ha, haBin} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {terminal} from '../helpers/tmux.js'
import {failoverLab} from './failover-helpers.js'

/**
 * Issue 18, favoured guests: the node taking over has room for exactly two of the lab's 16 MiB
 * hugepage-backed guests (its own 32 MiB hugetlbfs), and runs two less favoured ones. A failover
 * brings a favoured guest and one bigger than that node's whole share. Judged as an admin would:
 * ha check and ha failover --plan say, before anything runs, which guest is shut down there to
 * make room and which one cannot start at all; during the failover the node taking over is sampled
 * (virsh list) and never runs more than its share holds; after it the favoured guest beats there,
 * booted anew, the less favoured one that made room is shut off, the other one beats on untouched.
 * Its own guest lab, always taken down.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'libvirt'])
const labDir = `/tmp/ha-lab-${labName()}-guests-favoured-${process.pid}`
const journalDir = `${labDir}-journal`
const {haAdmin, lab, startHa} = failoverLab(labDir, journalDir)

/**
 * The guests, by priority: big is bigger than the secondary's whole share; lo1 and lo2 fill that
 * share now; plain, the least favoured, runs on plain memory (no huge pages), so shutting it down
 * would make no room for anyone here.
 */
const guests = [
  {hugepages: true, memoryMiB: 48, name: 'big', priority: 20},
  {hugepages: true, memoryMiB: 16, name: 'fav', priority: 10},
  {hugepages: true, memoryMiB: 16, name: 'lo2', priority: 2},
  {hugepages: true, memoryMiB: 16, name: 'lo1', priority: 1},
  {hugepages: false, memoryMiB: 16, name: 'plain', priority: 0},
] as const
const onPrimary = ['big', 'fav']
const onSecondary = ['lo1', 'lo2', 'plain']
/** The huge pages (MiB) the running guests named hold. */
const hugeMiB = (names: string[]) => names.reduce((sum, name) => sum + (guests.find((g) => g.name === name && g.hugepages)?.memoryMiB ?? 0), 0)

const virsh = (node: LabNode, ...args: string[]) => runInNode(labDir, node, ['virsh', '-q', '-c', 'qemu:///system', ...args], {okCodes: [1], timeoutMs: 60_000})
const domains = async (node: LabNode) => parseVirshList((await runInNode(labDir, node, ['virsh', '-c', 'qemu:///system', 'list', '--all'], {timeoutMs: 20_000})).stdout)
const stateOf = async (node: LabNode, guest: string) => (await domains(node)).find((d) => d.name === guest)?.state ?? 'absent'
const running = async (node: LabNode) => (await domains(node)).filter((d) => d.state === 'running').map((d) => d.name).sort()
const serialText = (node: LabNode, guest: string) => {
  const file = join(nodePaths(labDir, node).root, serialLogPath(guest))
  return existsSync(file) ? readFileSync(file, 'latin1') : ''
}

/** Free huge pages of a node's hugetlbfs, as stat -f says (what QEMU can still map). */
const freePages = async (node: LabNode) => Number((await runInNode(labDir, node, ['stat', '-f', '-c', '%a', '/dev/hugepages'])).stdout.trim())

async function within<T>(seconds: number, probe: () => Promise<T | undefined>): Promise<T | undefined> {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const found = await probe().catch(() => undefined)
    if (found !== undefined) return found
    await sleep(200)
  }

  return undefined
}

/** A lab guest (backed by huge pages or not), defined on both nodes from one XML (one UUID). */
async function defineOnBoth(name: string, memoryMiB: number, hugepages: boolean): Promise<void> {
  const xml = guestDomainXml(name)
    .replace('  <name>', `  <uuid>${randomUUID()}</uuid>\n  <name>`)
    .replace(/<memory unit='MiB'>\d+<\/memory>/, `<memory unit='MiB'>${memoryMiB}</memory>`)
    .replace('<vcpu>', hugepages ? '<memoryBacking><hugepages/></memoryBacking>\n  <vcpu>' : '<vcpu>')
  for (const node of ['primary', 'secondary'] as const) {
    writeFileSync(join(nodePaths(labDir, node).root, 'root', `${name}.xml`), xml)
    const r = await virsh(node, 'define', `/root/${name}.xml`)
    assert.equal(r.code, 0, r.stderr)
  }
}

async function startOn(node: LabNode, guest: string): Promise<void> {
  const r = await virsh(node, 'start', guest)
  assert.equal(r.code, 0, r.stderr)
  assert.ok(await within(30, async () => (heartbeats(serialText(node, guest)).length >= 2 ? true : undefined)), `${guest} does not beat on ${node}`)
}

/** The journal's data records of one step, merged. */
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

const shedWhy = 'to make room for fav (priority 10 over 1)'
const bigWhy = /^needs 48 MiB of huge pages; the target has \d+ MiB of memory and 0 MiB of huge pages free, and no more than \d+ MiB of memory and 32 MiB of huge pages after shutting down every less favoured guest$/

describe('a favoured guest on a node with room for two (ha lab up --guests, hugepage-backed guests)', {skip}, () => {
  before(async () => {
    rmSync(journalDir, {force: true, recursive: true})
    const r = ha(['lab', 'up', '--guests', '--lab-dir', labDir, '--json'], {timeoutMs: 180_000})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    const yaml = parse(readFileSync(lab.config, 'utf8'))
    yaml.guests = guests.map((g) => ({disks: 'shared', move: 'restart', name: g.name, priority: g.priority, shutdown: {mode: 'acpi', timeout: '20s'}}))
    writeFileSync(lab.config, stringify(yaml))
    for (const g of guests) await defineOnBoth(g.name, g.memoryMiB, g.hugepages)
    for (const name of onPrimary) await startOn('primary', name)
    for (const name of onSecondary) await startOn('secondary', name)
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
    rmSync(journalDir, {force: true, recursive: true})
  })

  it('the secondary\'s share is full, and ha check warns that big cannot start there even after shedding, while fav can once lo1 is shut down', async () => {
    assert.equal(hugePagesMiB.secondary, 32)
    assert.equal(await freePages('secondary'), 0, 'lo1 and lo2 hold the secondary\'s 16 pages')
    assert.equal(await freePages('primary'), 0, 'big and fav hold the primary\'s 32 pages')
    const check = haAdmin(['config', 'check'])
    assert.equal(check.status, 0, check.stdout + check.stderr)
    const checks = haAdmin(['check', '--json']).envelope!.result.checks as Array<{actions?: string[]; id: string; status: string; summary: string; title: string}>
    const row = (name: string) => checks.find((c) => c.id === 'guest' && c.title === `Guest ${name}`)!
    assert.equal(row('big').status, 'warn', row('big').summary)
    assert.match(row('big').summary, /^runs on primary; a failover could not start it on secondary: needs 48 MiB of huge pages; .* 32 MiB of huge pages after shutting down every less favoured guest$/)
    assert.match(row('big').actions![0], /^make room for its huge pages on secondary: the hugetlbfs QEMU maps them from \(\/dev\/hugepages, its size=\)/)
    assert.deepEqual(
      ['fav', 'lo1', 'lo2', 'plain'].map((name) => [name, row(name).status, row(name).summary]),
      [
        ['fav', 'pass', 'runs on primary; a failover starts it on secondary: 16 MiB of huge pages, once lo1 is shut down'],
        ['lo1', 'pass', `runs on secondary; a failover shuts it down on secondary: ${shedWhy}`],
        ['lo2', 'pass', 'runs on secondary; a failover keeps it on secondary'],
        // The least favoured, but its memory is not huge pages: shutting it down would free none.
        ['plain', 'pass', 'runs on secondary; a failover keeps it on secondary'],
      ],
    )
  })

  it('ha failover --plan (and ha failover at a terminal, before it asks) says that lo1 is shut down on the secondary for fav, that big is not started, and lo2 keeps running', async (t) => {
    const text = haAdmin(['failover', '--plan'])
    assert.equal(text.status, 0, text.stdout + text.stderr)
    const lines = text.stdout.slice(text.stdout.indexOf('Guests on ctl-b (secondary)')).trim().split('\n')
    assert.equal(lines[0], 'Guests on ctl-b (secondary), from what both nodes\' libvirtd report now (guests-start decides again when it runs):', text.stdout)
    assert.equal(lines[1], `  lo1 (priority 1): SHUT DOWN there first, before any guest arrives (${shedWhy})`)
    assert.match(lines[2], /^ {2}big \(priority 20\): NOT started there \(needs 48 MiB of huge pages; .*\)$/)
    assert.deepEqual(lines.slice(3), ['  fav (priority 10): started there (16 MiB of huge pages, once lo1 is shut down)', '  lo2 (priority 2): keeps running there (runs there)', '  plain (priority 0): keeps running there (runs there)'])

    const json = haAdmin(['failover', '--plan', '--json'])
    assert.equal(json.status, 0, json.stdout + json.stderr)
    const rows = json.envelope!.result.guests as Array<{failover: {action: string; to: string; why: string}; name: string; states: Record<LabNode, string>}>
    assert.deepEqual(
      rows.map((r) => [r.name, r.states.primary, r.states.secondary, r.failover.to, r.failover.action]),
      [
        ['big', 'running', 'shut off', 'secondary', 'leave-off'],
        ['fav', 'running', 'shut off', 'secondary', 'start'],
        ['lo2', 'shut off', 'running', 'secondary', 'keep'],
        ['lo1', 'shut off', 'running', 'secondary', 'shed'],
        ['plain', 'shut off', 'running', 'secondary', 'keep'],
      ],
    )
    assert.match(rows[0].failover.why, bigWhy)

    // At a terminal, ha failover shows the same before it asks for the node's name (Ctrl-C there: nothing runs).
    const screen = terminal(t, `HA_FAILOVER_DIR=${journalDir} NO_COLOR=1 ip netns exec ${labNetns.admin} ${process.execPath} ${haBin} failover --config ${lab.config}; echo "[exit $?]"; sleep 600`)
    const asked = await screen.waitFor(/type the node's name \(ctl-[ab]\):/, 60_000)
    assert.ok(asked.includes(`Guests on ctl-b (secondary), from what both nodes' libvirtd report now (guests-start decides again when it runs):\n  lo1 (priority 1): SHUT DOWN there first, before any guest arrives (${shedWhy})\n  big (priority 20): NOT started there`), asked)
    assert.ok(asked.indexOf('Guests on ctl-b') < asked.indexOf('Active: ctl-a (primary); taking over: ctl-b (secondary)'), 'before the question\'s summary')
    screen.keys('C-c')
    assert.equal(await screen.exitCode(), 130)
    // Nothing ran: the guests are where they were.
    assert.deepEqual([await running('primary'), await running('secondary')], [['big', 'fav'], ['lo1', 'lo2', 'plain']])
  })

  it('ha failover: lo1 is shut down on the secondary, then fav starts there; big stays off; plain and lo2 run on; never more than the share holds', async () => {
    const lo2Before = heartbeats(serialText('secondary', 'lo2')).at(-1)!
    const plainBefore = heartbeats(serialText('secondary', 'plain')).at(-1)!
    const run = startHa(['failover', '--yes', '--json'])
    // Both nodes' running guests, sampled until ha ends (the node taking over first).
    const samples: Array<{primary: string[]; secondary: string[]}> = []
    let done = false
    void run.done.finally(() => (done = true))
    for (let i = 0; i < 3000 && !done; i++) {
      const secondary = await running('secondary').catch(() => ['unreadable'])
      samples.push({primary: await running('primary').catch(() => ['unreadable']), secondary})
    }

    const result = await run.done
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`)
    const ran = (result.envelope!.result.ran as Array<{action: string; step: string}>).filter((r) => r.step.startsWith('guests-')).map((r) => r.action)
    const at = (text: string) => ran.indexOf(text)
    const shed = at('ctl-b (secondary)$ virsh -c qemu:///system shutdown --mode acpi lo1')
    const start = at('ctl-b (secondary)$ virsh -c qemu:///system start fav')
    assert.ok(shed !== -1 && start > shed, `lo1 shut down, then fav started: ${ran.join('; ')}`)
    assert.deepEqual(ran.filter((a) => / (lo2|big|plain)$/.test(a) && a.startsWith('ctl-b')), [], `nothing done to lo2, big or plain on the secondary: ${ran.join('; ')}`)
    const started = journalled('guests-start')
    assert.deepEqual([started.shed, started.started, started.left_off.map((d: {guest: string}) => d.guest)], [['lo1'], ['fav', 'lo2', 'plain'], ['big']])

    // The share never held more than two of these guests, and fav never ran on both nodes.
    assert.ok(samples.length >= 10, `${samples.length} samples`)
    assert.deepEqual(samples.filter((s) => hugeMiB(s.secondary) > hugePagesMiB.secondary), [], 'never more running on the secondary than its share holds')
    assert.deepEqual(samples.filter((s) => s.secondary.includes('fav') && s.primary.includes('fav')), [], 'fav never runs on both nodes')
    const firstFav = samples.findIndex((s) => s.secondary.includes('fav'))
    assert.ok(firstFav > 0, 'fav was seen arriving')
    assert.deepEqual(samples[firstFav].secondary, ['fav', 'lo2', 'plain'], 'lo1 was gone before fav ran there')

    // After: fav beats on the secondary (booted anew: restarted), lo2 beats on, untouched; lo1 and big off.
    assert.ok(await within(30, async () => (heartbeats(serialText('secondary', 'fav')).length >= 3 ? true : undefined)), 'fav beats on the secondary')
    assert.match(serialText('secondary', 'fav'), /^\r?\nha lab guest: booted\r\nheartbeat 1\r\n/)
    const lo2 = heartbeats(serialText('secondary', 'lo2'))
    assert.ok(lo2.at(-1)! > lo2Before, 'lo2 kept beating')
    assert.deepEqual(lo2, Array.from({length: lo2.length}, (_, i) => i + 1), 'lo2 never restarted: one count from its boot')
    const plain = heartbeats(serialText('secondary', 'plain'))
    assert.ok(plain.at(-1)! > plainBefore && plain.length === plain.at(-1), 'plain, least favoured but freeing no huge pages, beat on untouched')
    assert.deepEqual([await running('primary'), await running('secondary')], [[], ['fav', 'lo2', 'plain']])
    assert.deepEqual([await stateOf('secondary', 'lo1'), await stateOf('secondary', 'big'), await stateOf('primary', 'big')], ['shut off', 'shut off', 'shut off'])
    assert.match(serialText('secondary', 'lo1'), /ACPI power button, powering off\r\n$/, 'lo1 shut down cleanly (ACPI), not destroyed')
    assert.equal(await freePages('secondary'), 0)
    console.log(`# favoured guest: ha failover ${result.envelope!.result.wall_ms} ms; ${samples.length} samples of both nodes' virsh list, never more hugepage-backed guests running on the secondary than its share holds; fav's first sample there with lo1 already gone, plain untouched`)
  })

  it('and back, fav migrating live: lo1 is shut down on the primary before the migration starts, fav beats on from where it was, lo2 has no room left and stays off', async () => {
    const yaml = parse(readFileSync(lab.config, 'utf8'))
    yaml.guests = yaml.guests.map((g: {name: string}) => (g.name === 'fav' ? {...g, move: 'live'} : g))
    writeFileSync(lab.config, stringify(yaml))
    // plain has had its part: off, it stays out of the way back (neither leaving nor arriving).
    assert.equal((await virsh('secondary', 'destroy', 'plain')).code, 0)
    // The primary's 64 MiB share filled: big (48 MiB, more favoured than fav) and lo1 (16 MiB, less).
    for (const name of ['big', 'lo1']) await startOn('primary', name)
    assert.equal(await freePages('primary'), 0)
    const plan = haAdmin(['failover', '--plan', '--json'])
    assert.equal(plan.status, 0, plan.stdout + plan.stderr)
    const decided = (plan.envelope!.result.guests as Array<{failover: null | {action: string; why: string}; name: string}>).map((r) => [r.name, r.failover?.action ?? null])
    assert.deepEqual(decided, [['big', 'keep'], ['fav', 'start'], ['lo2', 'leave-off'], ['lo1', 'shed'], ['plain', null]])

    const favBefore = heartbeats(serialText('secondary', 'fav')).at(-1)!
    const run = startHa(['failover', '--yes', '--json'])
    const samples: Array<{primary: string[]; secondary: string[]}> = []
    let done = false
    void run.done.finally(() => (done = true))
    for (let i = 0; i < 3000 && !done; i++) {
      const primary = await running('primary').catch(() => ['unreadable'])
      samples.push({primary, secondary: await running('secondary').catch(() => ['unreadable'])})
    }

    const result = await run.done
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`)
    const ran = (result.envelope!.result.ran as Array<{action: string; step: string}>).filter((r) => r.step.startsWith('guests-')).map((r) => r.action)
    const shed = ran.indexOf('ctl-a (primary)$ virsh -c qemu:///system shutdown --mode acpi lo1')
    const migrate = ran.indexOf('ctl-b (secondary)$ virsh -c qemu:///system migrate --live --persistent fav qemu+tcp://198.18.0.2/system')
    assert.ok(shed !== -1 && migrate > shed, `lo1 shut down, then fav migrated: ${ran.join('; ')}`)
    assert.ok(!ran.some((a) => /start (lo2|lo1)$/.test(a)), `neither lo1 nor lo2 started: ${ran.join('; ')}`)

    // fav moved live: its count goes on, on the primary, from where it stopped on the secondary.
    assert.ok(await within(10, async () => (heartbeats(serialText('primary', 'fav')).length >= 3 ? true : undefined)), 'fav beats on the primary')
    const [last, first] = [heartbeats(serialText('secondary', 'fav')).at(-1)!, heartbeats(serialText('primary', 'fav'))[0]]
    assert.ok(last >= favBefore && first > last && first <= last + 2, `last heartbeat on the secondary ${last}, first on the primary ${first}`)
    assert.doesNotMatch(serialText('primary', 'fav'), /booted/, 'migrated, not booted again')
    assert.deepEqual(samples.filter((s) => hugeMiB(s.primary) > hugePagesMiB.primary), [], 'never more running on the primary than its share holds')
    assert.deepEqual(samples.filter((s) => s.primary.includes('fav') && s.secondary.includes('fav')), [], 'fav never runs on both nodes')
    assert.deepEqual([await running('primary'), await running('secondary')], [['big', 'fav'], []])
    const started = journalled('guests-start')
    assert.deepEqual(started.left_off.map((d: {guest: string}) => d.guest), ['lo2'], 'lo2: left off, named in the journal')
    const left = journalled('guests-leave')['guest:fav']
    console.log(`# favoured guest back, live: ha failover ${result.envelope!.result.wall_ms} ms; migration ${left.elapsed_ms} ms, downtime ${left.downtime_ms} ms; heartbeat ${last} on the secondary, ${first} on the primary; ${samples.length} samples, never over the primary's share`)
  })
})

import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {runInNode} from '../../src/lab/container.js'
import {guestDomainXml, heartbeats, serialLogPath} from '../../src/lab/guest-domain.js'
import {hugePagesMiB, libvirtUri, parseVirshList} from '../../src/lab/guests.js'
import {type GuestView, labBoot, labDown, labHalt, labName, labNetns, type LabNode, labNodes, nodePaths} from '../../src/lab/lab.js'
import {nodeProcesses} from '../../src/lab/power.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * Issue 18, the lab's part: each node runs its own libvirtd (ha lab up --guests), and the lab's
 * tiny guest (a boot sector counting heartbeats on its serial port) boots on one node and
 * live-migrates to the other. Judged as an admin would: virsh on each node, the guest's serial
 * output in each node's own /var/log, which processes run where. Its own lab, always taken down.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'libvirt'])
const labDir = `/tmp/ha-lab-${labName()}-guests-${process.pid}`
const guest = 'heartbeat1'
const addresses = {primary: '198.18.0.2', secondary: '198.18.0.3'} as const

const virsh = (node: LabNode, ...args: string[]) => runInNode(labDir, node, ['virsh', '-q', '-c', 'qemu:///system', ...args], {timeoutMs: 120_000})

async function domains(node: LabNode): Promise<Array<{id: null | number; name: string; state: string}>> {
  return parseVirshList((await runInNode(labDir, node, ['virsh', '-c', 'qemu:///system', 'list', '--all'], {timeoutMs: 20_000})).stdout)
}

const serialFile = (node: LabNode) => join(nodePaths(labDir, node).root, serialLogPath(guest))
const serialText = (node: LabNode) => (existsSync(serialFile(node)) ? readFileSync(serialFile(node), 'latin1') : '')

async function within<T>(seconds: number, probe: () => Promise<T | undefined>, everyMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const found = await probe().catch(() => undefined)
    if (found !== undefined) return found
    await sleep(everyMs)
  }

  return undefined
}

const qemuPids = async (node: LabNode) => (await nodeProcesses(labDir, node)).filter((p) => p.args.startsWith('/usr/bin/qemu-system-x86_64')).map((p) => p.pid)
const libvirtdPids = async (node: LabNode) => (await nodeProcesses(labDir, node)).filter((p) => p.args.startsWith('/usr/sbin/libvirtd')).map((p) => p.pid)
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))

/** The lab nodes' network namespaces, as /proc/PID/ns/net names them (kept: after down their files are gone). */
const nodeNetns = () => labNodes.map((node) => `net:[${statSync(`/run/netns/${labNetns[node]}`).ino}]`)

/** Every libvirtd or QEMU process on the machine in one of `netns` (a node's, even once the lab's namespace files are deleted). */
function virtProcessesIn(netns: string[]): string[] {
  const found: string[] = []
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ')
      if (/libvirtd|qemu-system/.test(args) && netns.includes(readlinkSync(`/proc/${entry}/ns/net`))) found.push(`${entry} ${args.slice(0, 80)}`)
    } catch {
      // Gone meanwhile.
    }
  }

  return found
}

/**
 * virsh migrate --live --persistent --undefinesource from `source` to `target`, with both nodes'
 * virsh list sampled meanwhile, judged as an admin would judge it: the heartbeat counts on, on the
 * target, from where the source stopped; the guest never ran on both; it is defined on the target
 * only; domjobinfo --completed on the target has the downtime.
 */
async function migrate(source: LabNode, target: LabNode): Promise<{downtime: number; during: number; first: number; last: number; ms: number; samples: number}> {
  // Sampled target first, then source: QEMU pauses the source before it resumes the target, so
  // "running" on the target and then, later, on the source is a guest really running twice;
  // the other order could catch a correct hand-over in between.
  const samples: Array<{at: number; source: string; target: string}> = []
  let migrating = true
  const sampler = (async () => {
    for (let i = 0; i < 2000 && migrating; i++) {
      const onTarget = (await domains(target)).find((d) => d.name === guest)?.state ?? 'absent'
      const onSource = (await domains(source)).find((d) => d.name === guest)?.state ?? 'absent'
      samples.push({at: Date.now(), source: onSource, target: onTarget})
    }
  })()
  const before = heartbeats(serialText(source)).at(-1) ?? 0
  const started = Date.now()
  const r = await runInNode(labDir, source, ['virsh', '-c', 'qemu:///system', 'migrate', '--live', '--persistent', '--undefinesource', guest, libvirtUri(target)], {timeoutMs: 120_000})
  const ended = Date.now()
  // A few samples after the hand-over too.
  await sleep(1000)
  migrating = false
  await sampler
  assert.equal(r.code, 0, r.stderr)
  // The target's serial file is the target node's own, truncated when its QEMU started.
  assert.ok(await within(10, async () => (heartbeats(serialText(target)).length >= 3 ? true : undefined)), `no heartbeat on the ${target}: ${JSON.stringify(serialText(target))}`)

  const [was, now] = [heartbeats(serialText(source)), heartbeats(serialText(target))]
  const [last, first] = [was.at(-1)!, now[0]]
  assert.ok(last >= before, `${last} >= ${before}`)
  assert.ok(first > last && first <= last + 2, `last heartbeat on the source ${last}, first on the target ${first}`)
  assert.deepEqual(now, Array.from({length: now.length}, (_, i) => first + i), 'counting on, one by one')
  assert.doesNotMatch(serialText(target), /booted/, 'the guest did not boot again on the target')
  // Source and target output together are one unbroken count: nothing lost, nothing repeated.
  const joined = heartbeats(serialText(source) + serialText(target))
  assert.deepEqual(joined, Array.from({length: joined.length}, (_, i) => joined[0] + i))

  assert.deepEqual(samples.filter((s) => s.source === 'running' && s.target === 'running'), [], 'never running on both nodes')
  const during = samples.filter((s) => s.at > started && s.at < ended).length
  assert.ok(during >= 1, `${samples.length} samples of both nodes' virsh list, none ended during the migration`)
  assert.deepEqual(await domains(source), [], 'moved, definition and all (--undefinesource)')
  assert.deepEqual((await domains(target)).map((d) => [d.name, d.state]), [[guest, 'running']])
  assert.match((await virsh(target, 'dominfo', guest)).stdout, /^Persistent:\s+yes$/m)
  const job = (await virsh(target, 'domjobinfo', guest, '--completed')).stdout
  assert.match(job, /^Operation:\s+Incoming migration$/m)
  const downtime = /^Total downtime:\s+(\d+)\s+ms$/m.exec(job)?.[1]
  assert.ok(downtime !== undefined, job)
  return {downtime: Number(downtime), during, first, last, ms: ended - started, samples: samples.length}
}

describe('the guest lab (ha lab up --guests)', {skip}, () => {
  before(async () => {
    const started = Date.now()
    const r = ha(['lab', 'up', '--guests', '--lab-dir', labDir, '--json'], {timeoutMs: 120_000})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    console.log(`# ha lab up --guests: ${((Date.now() - started) / 1000).toFixed(1)} s (libvirtd answering in both nodes)`)
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
  })

  it('runs a libvirtd in each node that the other node reaches at qemu+tcp://ADDRESS/system, each a host of its own', async () => {
    const uuids: string[] = []
    for (const [node, other] of [['primary', 'secondary'], ['secondary', 'primary']] as const) {
      assert.equal((await libvirtdPids(node)).length, 1, `${node}: one libvirtd, inside the node`)
      const r = await runInNode(labDir, node, ['virsh', '-q', '-c', libvirtUri(other), 'hostname'], {timeoutMs: 20_000})
      assert.equal(r.stdout.trim(), other === 'primary' ? 'ctl-a' : 'ctl-b', `${node} reaches ${other}'s libvirtd over TCP`)
      const caps = await runInNode(labDir, node, ['virsh', '-q', '-c', `qemu+tcp://${addresses[other]}/system`, 'capabilities'], {timeoutMs: 20_000})
      uuids.push(/<host>\s*<uuid>([^<]+)<\/uuid>/.exec(caps.stdout)?.[1] ?? '')
    }

    assert.ok(uuids.every(Boolean) && uuids[0] !== uuids[1], `distinct host UUIDs: ${uuids.join(' ')}`)
    // Only on the node's lab address (and its own Unix socket), not on the service IP or anywhere else.
    const ss = await runInNode(labDir, 'primary', ['ss', '-Hltn', 'sport = :16509'])
    assert.deepEqual(ss.stdout.trim().split('\n').map((line) => line.trim().split(/\s+/)[3]), [`${addresses.primary}:16509`])
    const status = ha(['lab', 'status', '--lab-dir', labDir, '--json'])
    assert.equal(status.status, 0, status.stdout)
    const views = (status.json?.result as {guests: Record<LabNode, GuestView>}).guests
    assert.deepEqual(views, {primary: {domains: []}, secondary: {domains: []}})
  })

  it('the guest boots on the primary and its heartbeat counts up on its serial port, five a second', async () => {
    writeFileSync(join(nodePaths(labDir, 'primary').root, 'root', `${guest}.xml`), guestDomainXml(guest))
    assert.equal((await virsh('primary', 'define', `/root/${guest}.xml`)).code, 0)
    const started = Date.now()
    assert.equal((await virsh('primary', 'start', guest)).code, 0)
    const first = await within(30, async () => (heartbeats(serialText('primary')).length > 0 ? Date.now() : undefined))
    assert.ok(first, `no heartbeat within 30 s of virsh start: ${JSON.stringify(serialText('primary'))}`)
    console.log(`# guest boot (virsh start to its first heartbeat on the serial port): ${first - started} ms`)
    const a = heartbeats(serialText('primary'))
    await sleep(2000)
    const b = heartbeats(serialText('primary'))
    assert.deepEqual(b, Array.from({length: b.length}, (_, i) => i + 1), 'one by one from 1')
    const rate = (b.length - a.length) / 2
    assert.ok(rate >= 3 && rate <= 7, `${rate} heartbeats a second`)
    assert.match(serialText('primary'), /^\r?\nha lab guest: booted\r\n/)
    assert.deepEqual(await domains('primary'), [{id: 1, name: guest, state: 'running'}])
    assert.deepEqual(await domains('secondary'), [])
    const human = ha(['lab', 'status', '--lab-dir', labDir])
    assert.match(human.stdout, new RegExp(`guests on primary: ${guest} running\\n  guests on secondary: none defined`))
  })

  it('each node has a share of huge pages of its own: the secondary starts exactly two 16 MiB hugepage-backed guests, the third is refused for memory', async () => {
    const names = ['hp1', 'hp2', 'hp3']
    const free = async () => (await runInNode(labDir, 'secondary', ['stat', '-f', '-c', '%a', '/dev/hugepages'])).stdout.trim()
    try {
      assert.equal(await free(), String(hugePagesMiB.secondary / 2), 'the secondary\'s hugetlbfs, all free')
      const started: Array<{code: number; stderr: string}> = []
      for (const name of names) {
        writeFileSync(join(nodePaths(labDir, 'secondary').root, 'root', `${name}.xml`), guestDomainXml(name).replace('<vcpu>', '<memoryBacking><hugepages/></memoryBacking>\n  <vcpu>'))
        assert.equal((await virsh('secondary', 'define', `/root/${name}.xml`)).code, 0)
        started.push(await runInNode(labDir, 'secondary', ['virsh', '-q', '-c', 'qemu:///system', 'start', name], {okCodes: [1], timeoutMs: 60_000}))
      }

      assert.deepEqual(started.map((r) => r.code), [0, 0, 1], started.map((r) => r.stderr).join('\n'))
      assert.match(started[2].stderr, /Cannot allocate memory/)
      assert.equal(await free(), '0')
      assert.deepEqual((await domains('secondary')).map((d) => `${d.name} ${d.state}`), ['hp1 running', 'hp2 running', 'hp3 shut off'])
    } finally {
      for (const name of names) {
        await runInNode(labDir, 'secondary', ['sh', '-c', `virsh -q destroy ${name}; virsh -q undefine ${name}`], {okCodes: [0, 1]})
      }
    }

    assert.equal(await free(), String(hugePagesMiB.secondary / 2), 'given back when the guests stopped')
  })

  it('virsh migrate --live moves it to the secondary: its heartbeat goes on there, never from 0, never running on both', async () => {
    const m = await migrate('primary', 'secondary')
    assert.equal(heartbeats(serialText('primary'))[0], 1, 'the count the source began at boot')
    console.log(`# live migration primary -> secondary (virsh migrate --live): ${m.ms} ms; downtime (domjobinfo --completed): ${m.downtime} ms; last heartbeat on the source ${m.last}, first on the target ${m.first}; ${m.samples} samples of both virsh lists (${m.during} during the migration), none with the guest running on both`)
  })

  it('and back to the primary the same way', async () => {
    const m = await migrate('secondary', 'primary')
    console.log(`# live migration secondary -> primary: ${m.ms} ms; downtime ${m.downtime} ms; last heartbeat on the source ${m.last}, first on the target ${m.first}; ${m.samples} samples (${m.during} during), none running on both`)
  })

  it('ha lab halt of the node running the guest kills the guest with it; booted again, the node still has it defined, and it shuts down on ACPI', async () => {
    const pids = await qemuPids('primary')
    assert.equal(pids.length, 1, 'the guest\'s QEMU runs inside the primary')
    await labHalt('primary', {labDir})
    assert.deepEqual(pids.filter(alive), [], 'its QEMU died with the node')
    const size = statSync(serialFile('primary')).size
    await sleep(1000)
    assert.equal(statSync(serialFile('primary')).size, size, 'no heartbeat after the halt')
    assert.deepEqual(await domains('secondary'), [], 'the guest did not reappear on the secondary')

    await labBoot('primary', {labDir})
    assert.deepEqual((await domains('primary')).map((d) => [d.name, d.state]), [[guest, 'shut off']])
    // A start is a boot: the banner, and the count from 1 again (what a migration must never show).
    assert.equal((await virsh('primary', 'start', guest)).code, 0)
    assert.ok(await within(30, async () => (heartbeats(serialText('primary')).length >= 2 ? true : undefined)))
    assert.match(serialText('primary'), /^\r?\nha lab guest: booted\r\nheartbeat 1\r\n/)
    const shutdown = Date.now()
    assert.equal((await virsh('primary', 'shutdown', guest)).code, 0)
    const off = await within(20, async () => ((await virsh('primary', 'domstate', guest)).stdout.trim() === 'shut off' ? Date.now() : undefined), 200)
    assert.ok(off, 'virsh shutdown (ACPI power button) did not power the guest off within 20 s')
    assert.match(serialText('primary'), /ha lab guest: ACPI power button, powering off\r\n$/)
    console.log(`# virsh shutdown (ACPI) to shut off: ${off - shutdown} ms`)
  })

  it('ha lab down leaves no libvirtd or QEMU of the lab running, and none of its namespaces', async () => {
    assert.equal((await virsh('primary', 'start', guest)).code, 0)
    const pids = [...(await libvirtdPids('primary')), ...(await libvirtdPids('secondary')), ...(await qemuPids('primary'))]
    assert.equal(pids.length, 3, String(pids))
    const netns = nodeNetns()
    assert.equal(virtProcessesIn(netns).length, 3, 'the machine-wide scan sees them')
    const r = ha(['lab', 'down', '--lab-dir', labDir, '--json'])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.deepEqual(pids.filter(alive), [])
    assert.deepEqual(virtProcessesIn(netns), [])
    assert.deepEqual(Object.values(labNetns).filter((netns) => existsSync(`/run/netns/${netns}`)), [])
  })
})

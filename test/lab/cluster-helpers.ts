import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {rmSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {runInNode} from '../../src/lab/container.js'
import {labDown, labNetns, type LabNode, labNodes, nodePaths} from '../../src/lab/lab.js'
import {isPoweredOn} from '../../src/lab/power.js'
import {ha} from '../helpers/cli.js'
import {within as waitUntil} from '../helpers/within.js'

/**
 * The Pacemaker lab tests' view of a cluster lab, judged from outside as the failover tests judge
 * theirs: what crm_mon says on a node that answers, which MAC answers ARP for the service IP (an
 * admin-side sampler), what a client of the service IP gets, and what the storage holds.
 */
export const clusterNames = {primary: 'ctl-a', secondary: 'ctl-b'} as const
const serviceAddress = '198.18.0.100'
export const otherNode = (node: LabNode): LabNode => (node === 'primary' ? 'secondary' : 'primary')

export function clusterLab(labDir: string, group = 'ha-service', controller = 'ha-controller') {
  const every = Array.from({length: 255}, (_, i) => i + 1)
  const inNode = (node: LabNode, argv: string[], timeoutMs = 60_000) => runInNode(labDir, node, ['env', '-u', 'NODE_EXTRA_CA_CERTS', ...argv], {okCodes: every, timeoutMs})

  async function poweredNodes(): Promise<LabNode[]> {
    const on: LabNode[] = []
    for (const node of labNodes) if (await isPoweredOn(labDir, node)) on.push(node)
    return on
  }

  /** crm_mon's XML from the first powered node that answers (a node may be booting). */
  async function crmMon(): Promise<string | undefined> {
    for (const node of await poweredNodes()) {
      const r = await inNode(node, ['crm_mon', '--output-as=xml', '--fence-history=2'], 15_000).catch(() => undefined)
      if (r && r.stdout.includes('<current_dc') && /<current_dc [^>]*with_quorum="true"/.test(r.stdout)) return r.stdout
    }

    return undefined
  }

  /** The nodes crm_mon says run the controller (Started, active, not failed). */
  async function runningOn(): Promise<LabNode[] | undefined> {
    const xml = await crmMon()
    if (!xml) return undefined
    const block = new RegExp(`<resource id="${controller}"[^>]*>([\\s\\S]*?)</resource>`).exec(xml)
    if (!block || !/role="Started"/.test(block[0].split('>')[0])) return []
    return [...block[1].matchAll(/<node name="([^"]+)"/g)].map((m) => labNodes.find((n) => clusterNames[n] === m[1])!)
  }


  const within = <T>(seconds: number, probe: () => Promise<T | undefined>, everyMs = 250) => waitUntil(seconds, probe, {everyMs, retryErrors: true})

  /** Until the controller runs on exactly `node` (crm_mon), or undefined after `seconds`. */
  async function runsOn(node: LabNode, seconds: number): Promise<true | undefined> {
    return within(seconds, async () => {
      const on = await runningOn()
      return on?.length === 1 && on[0] === node ? true : undefined
    })
  }

  /** What a client on the lab's network gets from the service IP right now (undefined: no answer within 1 s). */
  async function serviceAnswer(): Promise<{greeting?: string; hostname?: string} | undefined> {
    const script = `fetch("http://${serviceAddress}:8080/", {signal: AbortSignal.timeout(1000)}).then(r => r.text()).then(t => process.stdout.write(t), () => process.exit(1))`
    const out = await capture(['ip', 'netns', 'exec', labNetns.admin, process.execPath, '-e', script])
    return out.code === 0 ? JSON.parse(out.stdout) : undefined
  }

  /** Each node's eth0 MAC. */
  async function macs(): Promise<Record<LabNode, string>> {
    const own = async (node: LabNode) => JSON.parse((await capture(['ip', '-n', labNetns[node], '-j', 'link', 'show', 'eth0'])).stdout)[0].address as string
    return {primary: await own('primary'), secondary: await own('secondary')}
  }

  /**
   * ARP for the service IP from the admin side, a probe every 100 ms (each one broadcast request, listening up to 1 s for
   * every answer, so two hosts answering one probe are both heard), until stopped.
   */
  function arpSampler() {
    const samples: Array<{at: number; macs: string[]}> = []
    let running = true
    const pending: Array<Promise<unknown>> = []
    const loop = (async () => {
      while (running) {
        const at = Date.now()
        pending.push(
          capture(['ip', 'netns', 'exec', labNetns.admin, 'arping', '-b', '-c', '2', '-w', '1', '-i', '5', '-I', 'ha-lab-br0', serviceAddress]).then((r) => {
            // Every arping hears every ARP reply on the bridge, its neighbours' too: an answer to its
            // own request is one within 50 ms of it (hosts answer in about a millisecond here).
            const answers = [...r.stdout.matchAll(/Unicast reply from [\d.]+ \[([0-9A-Fa-f:]+)\]\s+([\d.]+)ms/g)].filter((m) => Number(m[2]) < 50)
            const seen = [...new Set(answers.map((m) => m[1].toLowerCase()))]
            samples.push({at, macs: seen})
          }),
        )
        await sleep(100)
      }
    })()
    return {
      async stop() {
        running = false
        await loop
        await Promise.all(pending)
        return samples.sort((a, b) => a.at - b.at)
      },
    }
  }

  /** The storage's epoch, read on the node that has it mounted. */
  async function epoch(node: LabNode): Promise<{active: string; epoch: number}> {
    const r = await inNode(node, ['cat', '/var/opt/sun/xvm/.ha/epoch.json'])
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout)
  }

  /** What a node that does not run the service must not have: the product, the storage, the service IP. */
  async function holdsNothing(node: LabNode): Promise<string[]> {
    const held: string[] = []
    if ((await inNode(node, ['/etc/init.d/xvm', 'status'])).code !== 3) held.push('the product runs')
    if ((await inNode(node, ['mountpoint', '-q', '/var/opt/sun/xvm'])).code === 0) held.push('the storage is mounted')
    if ((await inNode(node, ['sh', '-c', `ip -4 addr show dev eth0 | grep -q ' ${serviceAddress}/'`])).code === 0) held.push('it holds the service IP')
    return held
  }

  /** The configuration the tests run on is exactly what ha cluster setup --apply makes of the lab's ha.yaml. */
  async function applySetup(): Promise<void> {
    const r = await inNode('primary', ['ha', 'cluster', 'setup', '--apply'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const verify = await inNode('secondary', ['crm_verify', '-L'])
    assert.equal(verify.code, 0, verify.stdout + verify.stderr)
  }

  /**
   * A cluster lab with the service running on the primary, an hourly backup taken, a canary
   * written, and the ARP sampler proven able to hear two answers (a neighbour claims the service
   * IP for a moment): what every case starts from.
   */
  async function up(): Promise<void> {
    const r = ha(['lab', 'up', '--cluster', '--lab-dir', labDir, '--json'], {timeoutMs: 120_000})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.ok(await within(60, async () => ((await inNode('primary', ['crm_mon', '-1'])).stdout.includes('Online: [ ctl-a ctl-b ]') ? true : undefined)), 'the cluster formed')
    await applySetup()
    assert.ok(await runsOn('primary', 60), 'the service starts on the primary')
    // What the hourly ha backup from cron has done by the time a node dies: the saved state on the storage.
    const backup = await inNode('primary', ['ha', 'backup', '--quiet'])
    assert.equal(backup.code, 0, backup.stderr)
    await writeCanary('primary')
    const sampler = arpSampler()
    await runInNode(labDir, 'secondary', ['ip', 'addr', 'add', `${serviceAddress}/24`, 'dev', 'eth0'])
    await sleep(1500)
    await runInNode(labDir, 'secondary', ['ip', 'addr', 'del', `${serviceAddress}/24`, 'dev', 'eth0'])
    const heard = await sampler.stop()
    assert.ok(heard.some((sample) => sample.macs.length === 2), `the sampler heard both MACs: ${JSON.stringify(heard.slice(-5))}`)
  }

  async function down(): Promise<void> {
    await labDown({labDir}).catch(() => {})
    rmSync(labDir, {force: true, recursive: true})
  }

  let canary = ''
  async function writeCanary(node: LabNode): Promise<void> {
    canary = randomBytes(16).toString('hex')
    const r = await inNode(node, ['sh', '-c', `echo ${canary} > /var/opt/sun/xvm/service/canary.txt && sync`])
    assert.equal(r.code, 0, r.stderr)
  }

  async function assertCanary(node: LabNode): Promise<void> {
    assert.equal((await inNode(node, ['cat', '/var/opt/sun/xvm/service/canary.txt'])).stdout.trim(), canary, `the canary written before is intact on ${node}`)
  }

  /** No ARP sample heard two MACs for the service IP; the last ones heard only `node`'s. */
  async function assertOneMac(samples: Array<{at: number; macs: string[]}>, node: LabNode): Promise<void> {
    const both = samples.filter((s) => s.macs.length > 1)
    assert.deepEqual(both, [], 'two nodes answered ARP for the service IP at once')
    const mac = (await macs())[node].toLowerCase()
    assert.deepEqual(samples.at(-1)?.macs, [mac], `the last sample: ${node}'s MAC`)
    assert.ok(samples.length > 20, `${samples.length} samples`)
  }

  /**
   * A failed case says what each node's Pacemaker and corosync saw (memberships lost, fencings,
   * starts and stops and their reasons, a pacemaker that stopped itself) and what the lab's BMC
   * was asked: the lab and its logs are gone by the time anyone reads a CI log. Read from each
   * node's disk, so a node that is off (fenced) still tells.
   */
  async function explained(work: () => Promise<void>): Promise<void> {
    try {
      await work()
    } catch (error) {
      const seen: string[] = []
      const tail = async (path: string, lines: number, pattern?: RegExp) => {
        const text = await readFile(path, 'utf8').catch((e: Error) => `(${e.message})`)
        return text.split('\n').filter((line) => !pattern || (pattern.test(line) && !line.includes('cib_perform'))).slice(-lines).join('\n')
      }

      const pacemaker = /state is now lost|will be fenced|Requesting fencing|returned 0 \||Result of (start|stop) operation|exit-reason|allegedly|fatal|Shutting down|error:/
      for (const node of labNodes) {
        const root = nodePaths(labDir, node).root
        seen.push(`--- ${node}'s pacemaker.log:\n${await tail(join(root, 'var/log/pacemaker/pacemaker.log'), 40, pacemaker)}`)
        seen.push(`--- ${node}'s corosync.log:\n${await tail(join(root, 'var/log/corosync/corosync.log'), 30)}`)
      }

      seen.push(`--- the BMC's log:\n${await tail(join(labDir, 'cluster', 'bmc.log'), 20)}`)
      if (error instanceof Error) error.message += `\n${seen.join('\n')}`
      throw error
    }
  }

  return {applySetup, arpSampler, assertCanary, assertOneMac, crmMon, down, epoch, explained, group, holdsNothing, inNode, macs, runningOn, runsOn, serviceAnswer, up, within, writeCanary}
}

function capture(argv: string[]): Promise<{code: number; stdout: string}> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {stdio: ['ignore', 'pipe', 'ignore']})
    let stdout = ''
    child.stdout.on('data', (b) => (stdout += b))
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({code: code ?? 128, stdout})
    })
  })
}

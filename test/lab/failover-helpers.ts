import assert from 'node:assert/strict'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {rmSync} from 'node:fs'

import {labNetns, labPaths, type LabNode} from '../../src/lab/lab.js'
import {haBin} from '../helpers/cli.js'
import {labDone, labReady} from './shared-lab.js'

/** The failover lab tests' view of a lab: ha in the admin namespace, ssh to the nodes, what a client sees. */
export function failoverLab(labDir: string, journalDir: string) {
  const lab = labPaths(labDir)
  const address = {primary: '198.18.0.2', secondary: '198.18.0.3'} as const
  const env = {...process.env, HA_FAILOVER_DIR: journalDir, NO_COLOR: '1'}

  /** ha in the admin namespace; --json output split into its per-step event lines and the final envelope. */
  function haAdmin(args: string[], extraEnv: NodeJS.ProcessEnv = {}, config = lab.config): Run {
    const r = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, ...args, '--config', config], {
      encoding: 'utf8',
      env: {...env, ...extraEnv},
      timeout: 300_000,
    })
    return {...splitOutput(r.stdout ?? ''), signal: r.signal, status: r.status, stderr: r.stderr ?? ''}
  }

  /**
   * ha in the admin namespace, not waited for (ip netns exec execs ha, so a signal sent to the
   * child reaches ha itself): `when` resolves in the output handler that first sees the text, so a
   * signal sent then lands while that step runs. Killed after 5 minutes.
   */
  function startHa(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Started {
    const child = spawn('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, ...args, '--config', lab.config], {env: {...env, ...extraEnv}})
    let stdout = ''
    let stderr = ''
    const waiters: Array<{resolve: () => void; text: string}> = []
    const look = () => {
      for (const w of [...waiters]) {
        if (stdout.includes(w.text) || stderr.includes(w.text)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve()
        }
      }
    }

    child.stdout!.on('data', (b) => {
      stdout += b
      look()
    })
    child.stderr!.on('data', (b) => {
      stderr += b
      look()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000)
    const done = new Promise<Run>((resolve) => {
      child.on('close', (status, signal) => {
        clearTimeout(timer)
        for (const w of waiters.splice(0)) w.resolve()
        resolve({...splitOutput(stdout), signal, status, stderr})
      })
    })
    const when = (text: string) => new Promise<boolean>((resolve) => {
      waiters.push({resolve: () => resolve(stdout.includes(text) || stderr.includes(text)), text})
      look()
    })
    return {child, done, stderr: () => stderr, stdout: () => stdout, when}
  }

  function ssh(node: LabNode, command: string) {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', labNetns.admin, 'ssh', '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', `root@${address[node]}`, command],
      {encoding: 'utf8', timeout: 120_000},
    )
    return {status: r.status, stderr: r.stderr ?? '', stdout: r.stdout ?? ''}
  }

  /** What a client on the lab's network gets from the service IP. */
  function serviceAnswer(): {greeting?: string; hostname?: string} {
    const script = 'fetch("http://198.18.0.100:8080/").then(r => r.text()).then(t => process.stdout.write(t), e => { console.error(e.message); process.exit(1) })'
    const r = spawnSync('ip', ['netns', 'exec', labNetns.admin, process.execPath, '-e', script], {encoding: 'utf8', timeout: 20_000})
    assert.equal(r.status, 0, `the service IP does not answer: ${r.stderr}`)
    return JSON.parse(r.stdout)
  }

  /** The MAC the admin side reaches the service IP at, and each node's own eth0 MAC. */
  function macs(): {service: string; primary: string; secondary: string} {
    spawnSync('ip', ['netns', 'exec', labNetns.admin, 'ping', '-c', '1', '-W', '2', '198.18.0.100'])
    const neigh = spawnSync('ip', ['-n', labNetns.admin, '-j', 'neigh', 'show', '198.18.0.100'], {encoding: 'utf8'})
    const own = (node: LabNode) => JSON.parse(spawnSync('ip', ['-n', labNetns[node], '-j', 'link', 'show', 'eth0'], {encoding: 'utf8'}).stdout)[0].address
    return {primary: own('primary'), secondary: own('secondary'), service: JSON.parse(neigh.stdout)[0]?.lladdr}
  }

  function heldAddresses(node: LabNode): string[] {
    const r = ssh(node, 'ip -j -4 addr show')
    assert.equal(r.status, 0, r.stderr)
    return JSON.parse(r.stdout).flatMap((l: any) => (l.addr_info ?? []).map((a: any) => a.local))
  }

  /** Content checksums and owners by name of the data directory (ha's own .ha folder aside), on the node holding it. */
  function dataDirFacts(node: LabNode): string {
    const r = ssh(node, 'cd /var/opt/sun/xvm && find . -path ./.ha -prune -o -path ./lost+found -prune -o -printf "%p %y %u %g %m\\n" | sort && find . -path ./.ha -prune -o -type f -print | sort | xargs sha256sum')
    assert.equal(r.status, 0, r.stderr)
    return r.stdout
  }

  function assertServes(active: LabNode): void {
    const standby: LabNode = active === 'primary' ? 'secondary' : 'primary'
    const answer = serviceAnswer()
    assert.equal(answer.greeting, 'hello from the shared storage')
    // The active node carries the primary's identity after a takeover: the name it answers with
    // is the one the node itself has now, and the MAC behind the service IP is that node's.
    assert.equal(answer.hostname, ssh(active, 'hostname').stdout.trim())
    const m = macs()
    assert.equal(m.service, m[active], `the service IP is answered from ${active}'s MAC`)
    assert.ok(heldAddresses(active).includes('198.18.0.100'), `${active} holds the service IP`)
    assert.ok(!heldAddresses(standby).includes('198.18.0.100'), `${standby} no longer holds the service IP`)
    assert.doesNotMatch(ssh(standby, 'cat /etc/network/interfaces').stdout, /198\.18\.0\.100/, `${standby}'s boot configuration no longer has the service IP`)
    assert.doesNotMatch(ssh(standby, 'cat /etc/fstab').stdout, /\/var\/opt\/sun\/xvm/, `${standby}'s fstab no longer mounts the storage`)
    assert.notEqual(ssh(standby, 'mountpoint -q /var/opt/sun/xvm').status, 0, `${standby} has the storage unmounted`)
  }

  /** Every action that ran is one its step's plan lists, and the steps ran in the plan's order. */
  function assertRanAsPlanned(plan: Array<{actions: string[]; id: string}>, run: Run): void {
    assert.deepEqual(
      run.events.filter((e) => e.event !== 'started').map((e) => e.step),
      plan.map((s) => s.id),
    )
    const ran = run.envelope!.result.ran as Array<{action: string; step: string}>
    assert.ok(ran.length > 10)
    for (const r of ran) assert.ok(plan.find((s) => s.id === r.step)!.actions.includes(r.action), `ran but not planned: ${r.step}: ${r.action}`)
  }


  /**
   * A lab as `ha lab up` leaves it for the file (before; the run's shared one when it is so, see
   * shared-lab.ts), and nothing of the file's own lab left (after): the admin side's journals go too.
   */
  async function up(): Promise<void> {
    rmSync(journalDir, {force: true, recursive: true})
    await labReady(labDir)
  }

  async function down(): Promise<void> {
    await labDone(labDir)
    rmSync(journalDir, {force: true, recursive: true})
  }

  return {assertRanAsPlanned, assertServes, dataDirFacts, down, haAdmin, startHa, heldAddresses, lab, macs, serviceAnswer, ssh, up}
}

export interface Run {
  envelope?: {error?: {actions: string[]; details?: any; message: string; name?: string}; result?: any; status: number; warnings: string[]}
  events: Array<{duration_ms?: number; event: string; step: string}>
  signal: NodeJS.Signals | null
  status: null | number
  stderr: string
  stdout: string
}

export interface Started {
  child: ChildProcess
  /** The run's end, its output split as haAdmin splits it. */
  done: Promise<Run>
  stderr: () => string
  stdout: () => string
  /** Resolves when the output first holds `text` (true), or at the end without it (false). */
  when: (text: string) => Promise<boolean>
}

/** The text of step `step`'s "started" event line under --json. */
export const stepStarted = (step: string) => `{"type":"step","step":"${step}","event":"started"`

/** --json output: the per-step event lines, then the envelope. */
function splitOutput(stdout: string): Pick<Run, 'envelope' | 'events' | 'stdout'> {
  const lines = stdout.split('\n')
  const events = lines.filter((l) => l.startsWith('{"type":"step"')).map((l) => JSON.parse(l))
  let envelope
  try {
    envelope = JSON.parse(lines.filter((l) => !l.startsWith('{"type":"step"')).join('\n'))
  } catch {}

  return {envelope, events, stdout}
}

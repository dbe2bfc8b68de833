import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {runInNode} from '../../src/lab/container.js'
import {labDown, labNetns, type LabNode, labNodes, labPaths, labStatus, labUp, nodePaths} from '../../src/lab/lab.js'
import {nodeMountPoints, nodeProcesses} from '../../src/lab/power.js'

/**
 * One lab for the lab files of a run. scripts/run-tests.mjs runs them one after another and names
 * the lab's folder in HA_TEST_LAB_DIR; the first file brings the lab up there, and each next file
 * uses it as it is when it is exactly as `ha lab up` left it, else brings up a fresh one (labUp
 * first removes the old). The runner takes the lab down after the last file.
 *
 * "Exactly as up left it" is compared, not assumed: right after up, a fingerprint of the lab is
 * kept; before a file reuses the lab, the fingerprint is taken again and must be the same. It
 * covers what a test could leave behind: each namespace's addresses and routes; each node running,
 * its boot id, mounts and processes (ssh sessions aside); every file of its own disk (logs and
 * scratch folders aside) by content, owner and mode; the data on the shared storage (ha's own .ha
 * folder aside: archives, locks and journals only ha writes); the lab's config, the admin side's
 * known_hosts, the clock skews and the lab's faults.
 * The one thing reused state may differ in is the storage's .ha folder, which is removed, as a
 * fresh lab has none. Anything else differs (a failover ran, a node is halted, a host key was
 * changed, a file was left): a fresh lab.
 *
 * A file run on its own (no HA_TEST_LAB_DIR) brings its own lab up and down, as before.
 */
const shared = process.env.HA_TEST_LAB_DIR || undefined

/** The lab folder of a test file: the run's shared one, else one of its own. */
export function labDirFor(name: string): string {
  return shared ?? `/tmp/ha-lab-${name}-${process.pid}`
}

const fingerprintFile = (labDir: string) => `${labDir}.fresh.json`

/** For before(): a lab as `ha lab up` leaves it. */
export async function labReady(labDir: string): Promise<void> {
  if (labDir === shared && existsSync(fingerprintFile(labDir))) {
    const fresh = readFileSync(fingerprintFile(labDir), 'utf8')
    // The storage's .ha folder goes first: it is the one part left out of the comparison. The
    // last file's last remote command may still be exiting on a node: looked at again, briefly.
    let now = ''
    for (let attempt = 0; attempt < 3 && now !== fresh; attempt++) {
      if (attempt > 0) await sleep(1000)
      now = await fingerprint(labDir, {clearHa: attempt === 0}).catch((error: Error) => `unreadable: ${error.message}`)
    }

    if (now === fresh) {
      console.log(`# the shared lab ${labDir} is as ha lab up left it: reused`)
      return
    }

    console.log(`# the shared lab ${labDir} differs from a fresh one (${firstDifference(fresh, now)}): a fresh lab`)
  }

  rmSync(fingerprintFile(labDir), {force: true})
  await labUp({labDir})
  if (labDir === shared) writeFileSync(fingerprintFile(labDir), await fingerprint(labDir, {clearHa: false}))
}

/** For after(): a file's own lab goes; the shared one stays for the next file. */
export async function labDone(labDir: string): Promise<void> {
  if (labDir === shared) return
  await labDown({labDir})
  rmSync(labDir, {force: true, recursive: true})
}

function firstDifference(a: string, b: string): string {
  const left = a.split('\n')
  const right = b.split('\n')
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    if (left[i] !== right[i]) return `fresh: ${left[i] ?? '(nothing)'}; now: ${right[i] ?? '(nothing)'}`
  }

  return 'none'
}

/** Paths on a node's own disk that change by themselves while it runs (logs, scratch), not by a test. */
const volatile = new Set(['var/log', 'tmp', 'var/tmp', 'run', 'proc', 'sys', 'dev'])

function walk(root: string, rel: string, out: string[]): void {
  const full = join(root, rel)
  const st = lstatSync(full)
  let what: string
  if (st.isSymbolicLink()) what = `link:${readlinkSync(full)}`
  else if (st.isFile()) what = `file:${createHash('sha256').update(readFileSync(full)).digest('hex')}`
  else if (st.isDirectory()) what = 'dir'
  else what = 'other'
  out.push(`${rel || '.'} ${what} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`)
  if (st.isDirectory()) {
    for (const name of readdirSync(full).sort()) {
      const child = rel ? `${rel}/${name}` : name
      if (!volatile.has(child)) walk(root, child, out)
    }
  }
}

async function fingerprint(labDir: string, options: {clearHa: boolean}): Promise<string> {
  const status = await labStatus({labDir})
  const lines = [`up ${status.up}, storage device ${status.loop_device}`]
  for (const netns of Object.values(labNetns)) {
    const ip = (...args: string[]) => spawnSync('ip', ['-n', netns, ...args], {encoding: 'utf8'}).stdout.trim().replaceAll('\n', ' | ')
    lines.push(`${netns}: addresses ${ip('-o', 'addr', 'show')}`, `${netns}: routes ${ip('route', 'show', 'table', 'all')}`)
  }

  for (const node of labNodes) {
    const n = status.nodes[node]
    lines.push(
      `${node}: running ${n.running}, boot ${n.boot_id}, sshd ${n.sshd_running}, service ${n.service_running}, service ip ${n.holds_service_ip}, storage ${n.data_dir_mounted}, skew ${n.clock_skew_s}`,
      `${node}: addresses ${[...n.addresses].sort().join(' ')}`,
      `${node}: mounts ${(await nodeMountPoints(labDir, node)).sort().join(' ')}`,
      `${node}: processes ${(await processes(labDir, node)).join(' | ')}`,
    )
    const disk: string[] = []
    walk(nodePaths(labDir, node).root, '', disk)
    lines.push(...disk.map((l) => `${node}:/${l}`))
  }

  const holder = labNodes.find((node) => status.nodes[node].data_dir_mounted)
  if (holder) {
    if (options.clearHa) await runInNode(labDir, holder, ['rm', '-rf', '--one-file-system', '/var/opt/sun/xvm/.ha'])
    const data = await runInNode(labDir, holder, ['sh', '-c', 'cd /var/opt/sun/xvm && find . -printf "%p %y %u %g %m %s %l\\n" | sort && find . -type f -exec sha256sum {} + | sort -k 2'])
    lines.push(...data.stdout.trim().split('\n').map((l) => `storage on ${holder}: ${l}`))
  }

  const lab = labPaths(labDir)
  lines.push(`config ${createHash('sha256').update(readFileSync(lab.config)).digest('hex')}`)
  lines.push(`known_hosts ${readFileSync(lab.knownHosts, 'utf8').trim().replaceAll('\n', ' | ')}`)
  lines.push(`faults ${existsSync(join(labDir, 'faults.json')) ? readFileSync(join(labDir, 'faults.json'), 'utf8').replaceAll(/\s+/g, '') : '[]'}`)
  return `${lines.join('\n')}\n`
}

/** A node's processes by what they run, without the ssh sessions a test's last ssh may leave closing. */
async function processes(labDir: string, node: LabNode): Promise<string[]> {
  const ps = await nodeProcesses(labDir, node)
  return ps
    .map((p) => p.args)
    .filter((args) => !/^sshd: (?!.*\[listener\])/.test(args))
    // The listener's title counts the connections starting at this moment.
    .map((args) => args.replace(/\[listener\] \d+ of [\d-]+ startups/, '[listener]'))
    .sort()
}

// See bench/check. Prints medians and the ratio issue 19 sets a target for (at most 1.5x the
// slower node's `ssh host true`; the nodes are asked in parallel). Target is reported, never asserted: speed lives here, not in tests.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'

import {runCheck} from '../src/check/check.js'
import {loadConfig} from '../src/config/load.js'
import {type Config, nodeNames} from '../src/config/schema.js'
import {startSshd, type TestSshd} from '../test/helpers/sshd.js'

const labConfig = '/var/lib/ha-lab/ha.yaml'
const labNetns = 'ha-lab-admin'
const {values} = parseArgs({options: {config: {type: 'string'}, loopback: {type: 'boolean'}, reps: {default: '7', type: 'string'}}})
const reps = Number(values.reps)

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

function timed(argv: string[]): number {
  const started = process.hrtime.bigint()
  const r = spawnSync(argv[0], argv.slice(1), {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}, timeout: 120_000})
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (r.status === null || (argv.includes('true') && r.status !== 0)) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`)
  return ms
}

async function loopbackSetup(): Promise<{cleanup: () => Promise<void>; configPath: string}> {
  const work = mkdtempSync(join(tmpdir(), 'ha-bench-'))
  const sshds: TestSshd[] = await Promise.all([startSshd(), startSshd()])
  writeFileSync(join(work, 'known_hosts'), sshds.map((s) => `${s.knownHostsLine}\n`).join(''))
  const nodes = nodeNames.map((n, i) => {
    const root = join(work, n)
    mkdirSync(join(root, 'n1gc-setup'), {recursive: true})
    mkdirSync(join(root, 'var/opt/sun/xvm'), {recursive: true})
    writeFileSync(join(root, 'n1gc-setup/.version.properties'), 'product.version=2.1.0\n')
    return `  ${n}:\n    hostname: ${n}\n    root: ${root}\n    ssh:\n      host: 127.0.0.1\n      port: ${sshds[i].port}\n      identity_file: ${sshds[i].clientKey}\n      known_hosts: ${join(work, 'known_hosts')}\n`
  })
  const configPath = join(work, 'ha.yaml')
  writeFileSync(configPath, `data_dir: /var/opt/sun/xvm\nnodes:\n${nodes.join('')}service_ips:\n  - address: 198.18.77.10/24\n    interface: lo\n`)
  return {
    cleanup: async () => {
      await Promise.all(sshds.map((s) => s.stop()))
      rmSync(work, {force: true, recursive: true})
    },
    configPath,
  }
}

const inLab = !values.loopback && !values.config && existsSync(labConfig)
const labNs = inLab && spawnSync('ip', ['netns', 'pids', labNetns]).status === 0
let setup: Awaited<ReturnType<typeof loopbackSetup>> | undefined
let configPath = values.config ?? (inLab ? labConfig : undefined)
if (!configPath) {
  console.log('no lab config (or --loopback): benchmarking against two sshds on 127.0.0.1')
  setup = await loopbackSetup()
  configPath = setup.configPath
}

try {
  const {config}: {config: Config} = await loadConfig(configPath)
  const wrap = (argv: string[]) => (labNs ? ['ip', 'netns', 'exec', labNetns, ...argv] : argv)
  const sshArgv = (n: (typeof nodeNames)[number]) => {
    const ssh = config.nodes[n].ssh
    if (!ssh) return undefined
    return wrap([
      'ssh', '-p', String(ssh.port), ...(ssh.identity_file ? ['-i', ssh.identity_file] : []),
      '-o', `UserKnownHostsFile=${ssh.known_hosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
      '-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-o', `ConnectTimeout=${Math.ceil(ssh.connect_timeout)}`,
      `${ssh.user}@${ssh.host}`, 'true',
    ])
  }

  const haArgv = wrap([process.execPath, 'bin/run.js', 'check', '--config', configPath, '--json'])
  const samples: Record<string, number[]> = {'ha check (CLI)': [], 'runCheck (in process)': []}
  for (const n of nodeNames) if (sshArgv(n)) samples[`ssh ${n} true`] = []
  timed(haArgv) // warm the page cache: the first Node start reads every module from disk
  for (let i = 0; i < reps; i++) {
    for (const n of nodeNames) {
      const argv = sshArgv(n)
      if (argv) samples[`ssh ${n} true`].push(timed(argv))
    }

    samples['ha check (CLI)'].push(timed(haArgv))
    if (!labNs) {
      const started = process.hrtime.bigint()
      await runCheck(config)
      samples['runCheck (in process)'].push(Number(process.hrtime.bigint() - started) / 1e6)
    }
  }

  const med = Object.fromEntries(Object.entries(samples).filter(([, v]) => v.length > 0).map(([k, v]) => [k, median(v)]))
  console.log(`config: ${configPath}${labNs ? ` (inside ip netns exec ${labNetns})` : ''}; ${reps} repetitions, medians:`)
  for (const [k, v] of Object.entries(med)) console.log(`  ${k.padEnd(24)} ${v.toFixed(1).padStart(8)} ms`)
  const slowest = Math.max(...nodeNames.map((n) => med[`ssh ${n} true`] ?? 0))
  if (slowest > 0) {
    const ratio = med['ha check (CLI)'] / slowest
    console.log(`ratio ha check / slower ssh true: ${ratio.toFixed(2)}x (target <= 1.5x: ${ratio <= 1.5 ? 'met' : 'NOT met'})`)
    if (med['runCheck (in process)']) console.log(`ratio without Node/oclif start-up: ${(med['runCheck (in process)'] / slowest).toFixed(2)}x`)
  }

} finally {
  await setup?.cleanup()
}

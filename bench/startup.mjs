// bench/startup: what one start of `ha` costs, against a bare `node -e ''` measured in the same
// run. Every start of ha pays it: cron's hourly `ha backup`, each remote `ha` a failover starts on
// a node, a Pacemaker monitor every few seconds.
//
//   node bench/startup.mjs [runs=20]      (after a build: it runs bin/run.js, i.e. dist/)
//
// CPU is user+sys of the child, read by the child itself at exit (process.cpuUsage() in a
// preloaded CommonJS file, so the yardstick pays the same preload); wall is the parent's clock
// around spawnSync. The cases run round-robin, so a burst of load on a shared machine hits each
// about alike; medians; the ratio is against the bare node of this same run. Target (issue 19):
// CPU ratio <= 1.5 for each command.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const runs = Number(process.argv[2] ?? 20)
const repo = fileURLToPath(new URL('..', import.meta.url))
const run = join(repo, 'bin/run.js')
const example = join(repo, 'templates/ha.example.yaml')

/** [label, node arguments, prints something]; the first is the yardstick. */
const cases = [
  ["node -e ''", ['-e', ''], false],
  ['ha --version', [run, '--version'], true],
  ['ha --version --json', [run, '--version', '--json'], true],
  ['ha help', [run, 'help'], true],
  ['ha backup --help', [run, 'backup', '--help'], true],
  ['ha config check', [run, 'config', 'check', '--config', example], true],
]

// A private directory (mode 0700) for the preload and the numbers the children write.
const work = mkdtempSync(join(tmpdir(), 'ha-bench-startup-'))
const preload = join(work, 'cpu.cjs')
writeFileSync(
  preload,
  `process.on('exit', () => {
  const u = process.cpuUsage()
  require('node:fs').appendFileSync(process.env.HA_BENCH_CPU, String(u.user + u.system) + '\\n')
})
`,
)

const once = (args, prints) => {
  const out = join(work, 'cpu')
  rmSync(out, {force: true})
  const start = process.hrtime.bigint()
  const r = spawnSync(process.execPath, ['-r', preload, ...args], {
    cwd: repo,
    env: {...process.env, HA_BENCH_CPU: out, NO_COLOR: '1'},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6
  if (r.status !== 0 || (prints && r.stdout.length === 0)) throw new Error(`node ${args.join(' ')}: exit ${r.status}\n${r.stderr}`)
  return {cpuMs: Number(readFileSync(out, 'utf8')) / 1000, wallMs}
}

const samples = cases.map(() => ({cpu: [], wall: []}))
try {
  for (const [, args, prints] of cases) once(args, prints) // warm the page cache; not counted
  for (let i = 0; i < runs; i++) {
    for (const [c, [, args, prints]] of cases.entries()) {
      const {cpuMs, wallMs} = once(args, prints)
      samples[c].cpu.push(cpuMs)
      samples[c].wall.push(wallMs)
    }
  }
} finally {
  rmSync(work, {force: true, recursive: true})
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const [base] = samples
const baseCpu = median(base.cpu)
const baseWall = median(base.wall)
console.log(`node ${process.version} ${process.platform}-${process.arch}; ${runs} runs each, round-robin; medians`)
console.log(`${'command'.padEnd(22)} ${'cpu ms'.padStart(7)} ${'wall ms'.padStart(8)}  cpu ratio  wall ratio`)
for (const [c, [label]] of cases.entries()) {
  const cpu = median(samples[c].cpu)
  const wall = median(samples[c].wall)
  const ratio = (x, y) => `${(x / y).toFixed(2)}×`.padStart(9)
  console.log(`${label.padEnd(22)} ${cpu.toFixed(1).padStart(7)} ${wall.toFixed(1).padStart(8)}  ${ratio(cpu, baseCpu)}  ${ratio(wall, baseWall).padStart(10)}`)
}

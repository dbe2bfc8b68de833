// Shared by the benches: runs a command as a child and reports its wall time and peak RSS (the
// child's own, from GNU time's %M: the kernel's maxrss of the process it waited for).
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

const gnuTime = '/usr/bin/time'
if (!existsSync(gnuTime)) throw new Error('bench: GNU time (/usr/bin/time, Debian package time) is needed for the peak RSS; node scripts/ensure-deps.mjs installs it')

/**
 * Runs `cmd args` (stdout and stderr inherited unless `options.stdio` says otherwise) and returns
 * {ms, cpuMs (user + system, the child and what it waited for), rssMB, status}. `ok` lists the exit codes that are not a failure.
 */
export function measure(cmd, args, options = {}) {
  const {ok = [0], ...spawnOptions} = options
  const dir = mkdtempSync(join(tmpdir(), 'ha-bench-time-'))
  const out = join(dir, 'rss')
  try {
    const start = process.hrtime.bigint()
    const r = spawnSync(gnuTime, ['-f', '%M %U %S', '-o', out, cmd, ...args], {stdio: 'inherit', ...spawnOptions})
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (!ok.includes(r.status)) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`)
    // GNU time writes "Command exited with non-zero status N" before the number when it is not 0.
    const [kb, user, sys] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number)
    return {cpuMs: (user + sys) * 1000, ms, rssMB: kb / 1024, status: r.status}
  } finally {
    rmSync(dir, {force: true, recursive: true})
  }
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

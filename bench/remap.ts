/**
 * bench/remap: re-own a data directory of ~1,000,000 entries by name, against `chown -R` of the
 * same tree in the same run (which does strictly less: one owner for everything).
 *
 *   node --import tsx bench/remap.ts [runs=3]
 *
 * The tree (50×40 directories of 470 files, 25 symlinks, 4 hardlinks; 5 users and 4 groups with
 * swaps and chains in the mapping; one setuid file per directory) is generated once under
 * bench/out/remap-tree and reused. Owners are reset between runs. Every measured operation runs in
 * its own process (bench/remap-worker.ts) so its peak RSS is its own; `sync` runs before each
 * measurement and is timed after it, so dirty-metadata writeback is charged to whoever caused it.
 * Prints per-run figures and the medians of: apply / chown -R (target ≤ 1.2), a second run with
 * nothing left to change / a plain walk (target ≤ 1.0), and peak RSS (target < 256 MB); and, as
 * the floor any pure-Node implementation meets, a bare lstat+lchown loop / chown -R.
 *
 * Measured 2026-11-22 (Debian 12, 2 vCPU shared with other jobs, ext4 on virtio; 3 runs each):
 *   re-own / chown -R medians 1.40, 1.72, 2.12 (single runs 1.35–3.66, chown -R itself 4.4–10 s);
 *   bare Node lstat+lchown loop / chown -R medians 1.39, 1.57 — the 1.2 target is below what pure
 *   Node reaches here; a native per-entry fchownat (N-API, tried outside the repo) gave 1.3–1.4.
 *   Second run / plain Node walk 0.89–1.15 (alternating pairs outside the bench: 0.92–0.98).
 *   Peak RSS 146–186 MB.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(top, 'bench', 'out')
const tree = join(out, 'remap-tree')
const runs = Number(process.argv[2] ?? 3)

function timed(cmd: string, args: string[]): {ms: number; stdout: string} {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(cmd, args, {cwd: top, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit']})
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`)
  return {ms, stdout: r.stdout}
}

const syncMs = () => timed('sync', []).ms
type WorkerOut = {max_rss_mb: number; ms: number; op: string; result: any}
function worker(op: string, extra = ''): WorkerOut & {wall_ms: number} {
  const r = timed(process.execPath, ['--import', 'tsx', 'bench/remap-worker.ts', op, tree, ...(extra ? [extra] : [])])
  return {...(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as WorkerOut), wall_ms: r.ms}
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const f = (ms: number) => (ms / 1000).toFixed(2) + 's'

mkdirSync(out, {recursive: true})
if (!existsSync(join(out, 'remap-tree.complete'))) {
  console.log('generating the tree (once; cached under bench/out/) ...')
  console.log(worker('generate').result)
}

syncMs()
console.log('resetting owners:', worker('reset').result, 'entries')
const rows: Array<Record<string, number>> = []
for (let run = 0; run < runs; run++) {
  const journal = join(out, `remap-journal-${run}`)
  rmSync(journal, {force: true})
  const row: Record<string, number> = {}
  const doChown = () => {
    syncMs()
    row.chown_ms = timed('chown', ['-R', '2103:3101', tree]).ms
    row.chown_sync_ms = syncMs()
    worker('reset')
    syncMs()
    row.raw_ms = worker('raw').ms
    syncMs()
    worker('reset')
  }

  const doApply = () => {
    syncMs()
    const a = worker('apply', journal)
    row.apply_sync_ms = syncMs()
    row.apply_ms = a.ms
    row.apply_wall_ms = a.wall_ms
    row.apply_rss_mb = a.max_rss_mb
    row.changes = a.result.changes
    // Second run, nothing left to change: must create no journal and change nothing.
    const second = join(out, `remap-journal-second-${run}`)
    rmSync(second, {force: true})
    syncMs()
    const s = worker('apply-settled', second)
    if (s.result.changes !== 0 || s.result.journal_path !== null || existsSync(second)) {
      throw new Error(`second run changed something: ${JSON.stringify(s.result).slice(0, 300)}`)
    }

    row.second_ms = s.ms
    row.second_rss_mb = s.max_rss_mb
    syncMs()
    const w = worker('walk')
    row.walk_ms = w.ms
    syncMs()
    row.find_ms = timed('find', [tree, '-printf', '']).ms
    row.find_stat_ms = timed('sh', ['-c', `find '${tree}' -printf '%U:%G\\n' >/dev/null`]).ms
    const u = worker('undo', journal)
    row.undo_ms = u.ms
    row.undo_rss_mb = u.max_rss_mb
    if (u.result.restored !== a.result.changes) throw new Error(`undo restored ${u.result.restored} of ${a.result.changes}`)
    rmSync(journal, {force: true})
  }

  // Alternate the order so neither side always meets the other's writeback.
  if (run % 2 === 0) {
    doChown()
    doApply()
  } else {
    doApply()
    doChown()
  }

  row.ratio = row.apply_ms / row.chown_ms
  row.raw_ratio = row.raw_ms / row.chown_ms
  row.ratio_sync = (row.apply_ms + row.apply_sync_ms) / (row.chown_ms + row.chown_sync_ms)
  row.second_vs_walk = row.second_ms / row.walk_ms
  rows.push(row)
  console.log(
    `run ${run + 1}: chown -R ${f(row.chown_ms)} (+sync ${f(row.chown_sync_ms)}) | re-own ${f(row.apply_ms)} ` +
      `(+sync ${f(row.apply_sync_ms)}, process ${f(row.apply_wall_ms)}, ${row.changes} changes, ${row.apply_rss_mb} MB) ` +
      `ratio ${row.ratio.toFixed(2)} (with sync ${row.ratio_sync.toFixed(2)}) | second run ${f(row.second_ms)} vs plain walk ` +
      `${f(row.walk_ms)} = ${row.second_vs_walk.toFixed(2)} (find -printf '' ${f(row.find_ms)}, find %U:%G ${f(row.find_stat_ms)}) | ` +
      `undo ${f(row.undo_ms)} ${row.undo_rss_mb} MB | bare Node lstat+lchown loop ${f(row.raw_ms)} = ${row.raw_ratio.toFixed(2)} × chown -R`,
  )
}

const m = (k: string) => median(rows.map((r) => r[k]))
const peak = Math.max(...rows.flatMap((r) => [r.apply_rss_mb, r.second_rss_mb, r.undo_rss_mb]))
console.log(`\nmedian over ${runs} runs: re-own/chown -R ${m('ratio').toFixed(2)} (target <= 1.2; with the final sync ${m('ratio_sync').toFixed(2)}); ` +
  `second run/plain walk ${m('second_vs_walk').toFixed(2)} (target <= 1.0); peak RSS ${peak} MB (target < 256); ` +
  `floor: bare Node lstat+lchown loop/chown -R ${m('raw_ratio').toFixed(2)}`)

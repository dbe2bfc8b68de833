/**
 * One measured operation of bench/remap.ts, in its own process so that its peak RSS is its own.
 * Prints one JSON line: {op, ms, max_rss_mb, result}.
 */
import {closeSync, lchownSync, lstatSync, openSync, readdirSync, rmSync, writeFileSync, symlinkSync, linkSync, mkdirSync, existsSync, chmodSync} from 'node:fs'
import {join} from 'node:path'

import {parseAccounts} from '../src/facts/accounts.js'
import {applyReown, planOwnerMaps, surveyReown, undoReown} from '../src/restore/reown.js'

export const SAVED_PASSWD = 'u1:x:2001:3001::/:/bin/sh\nu2:x:2002:3001::/:/bin/sh\nu3:x:2003:3001::/:/bin/sh\nu4:x:2004:3001::/:/bin/sh\nu5:x:2005:3001::/:/bin/sh\n'
export const TARGET_PASSWD = 'u1:x:2002:3001::/:/bin/sh\nu2:x:2001:3001::/:/bin/sh\nu3:x:2103:3001::/:/bin/sh\nu4:x:2104:3001::/:/bin/sh\nu5:x:2005:3001::/:/bin/sh\n'
export const SAVED_GROUP = 'g1:x:3001:\ng2:x:3002:\ng3:x:3003:\ng4:x:3004:\n'
export const TARGET_GROUP = 'g1:x:3101:\ng2:x:3002:\ng3:x:3004:\ng4:x:3003:\n'

/** The owner every entry had when generated, derived from its name so a reset needs no list. */
export function ownerOf(name: string): [number, number] {
  let h = 0
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0
  return [2001 + (h % 5), 3001 + ((h >>> 8) % 4)]
}

// `settled`: the saved files are this host's, i.e. the tree already has the right owners.
const plan = (settled = false) =>
  planOwnerMaps({
    savedGroup: parseAccounts(settled ? TARGET_GROUP : SAVED_GROUP, 'group', 'saved/group'),
    savedPasswd: parseAccounts(settled ? TARGET_PASSWD : SAVED_PASSWD, 'passwd', 'saved/passwd'),
    targetGroup: parseAccounts(TARGET_GROUP, 'group', 'target/group'),
    targetPasswd: parseAccounts(TARGET_PASSWD, 'passwd', 'target/passwd'),
  })

/** A plain Node walk that reads every owner (what a no-op re-own cannot avoid doing). */
function plainWalk(dir: string): number {
  let n = 1
  let sum = 0
  const stack = [dir]
  while (stack.length > 0) {
    const d = stack.pop()!
    for (const name of readdirSync(d)) {
      const p = d + '/' + name
      const s = lstatSync(p)
      sum += s.uid
      n++
      if (s.isDirectory()) stack.push(p)
    }
  }

  return n + (sum & 0)
}

/**
 * The floor for any pure-Node re-own: lstat and lchown every entry by a bare name relative to the
 * working directory, no journal, no checks, no mapping. Measured so the report can say how much
 * of the gap to `chown -R` is Node's per-call cost rather than this module's.
 */
function rawFloor(dir: string): number {
  let n = 0
  const stack = [dir]
  while (stack.length > 0) {
    const d = stack.pop()!
    process.chdir(d)
    for (const name of readdirSync('.')) {
      const s = lstatSync(name)
      lchownSync(name, 2103, 3101)
      n++
      if (s.isDirectory()) stack.push(d + '/' + name)
    }
  }

  return n
}

/** Puts back the generated owners after `chown -R` (not timed). */
function reset(dir: string): number {
  let n = 0
  const stack = [dir]
  while (stack.length > 0) {
    const d = stack.pop()!
    for (const e of readdirSync(d, {withFileTypes: true})) {
      const p = d + '/' + e.name
      const [u, g] = ownerOf(e.name)
      lchownSync(p, u, g)
      if (e.name.startsWith('s')) chmodSync(p, 0o4755)
      n++
      if (e.isDirectory()) stack.push(p)
    }
  }

  return n
}

/** 50 × 40 leaf directories of 470 files, 25 symlinks and 4 hardlinks: about 1,000,000 entries. */
function generate(dir: string, top: number, sub: number, files: number): number {
  let n = 0
  mkdirSync(dir, {recursive: true})
  for (let t = 0; t < top; t++) {
    const td = join(dir, `t${t}`)
    mkdirSync(td)
    n++
    for (let s = 0; s < sub; s++) {
      const sd = join(td, `d${s}`)
      mkdirSync(sd)
      n++
      for (let f = 0; f < files; f++) {
        // one setuid file per directory ("s" prefix), the rest plain
        const name = f === 0 ? 'setuid-tool' : `f${f}`
        closeSync(openSync(join(sd, name), 'w', 0o644))
        n++
      }

      for (let l = 0; l < 25; l++) {
        symlinkSync(l % 5 === 0 ? '/etc/passwd' : `f${l + 1}`, join(sd, `l${l}`))
        n++
      }

      for (let h = 0; h < 4; h++) {
        linkSync(join(sd, `f${h + 1}`), join(sd, `h${h}`))
        n++
      }
    }
  }

  writeFileSync(join(dir, '..', 'remap-tree.complete'), String(n))
  return n
}

if (process.argv[1]?.endsWith("remap-worker.ts")) await main()
async function main() {
const [op, dir, extra] = process.argv.slice(2)
const t0 = process.hrtime.bigint()
const cpu0 = process.cpuUsage()
let result: unknown
switch (op) {
  case 'generate': {
    if (existsSync(dir)) rmSync(dir, {force: true, recursive: true})
    result = generate(dir, 50, 40, 470)
    result = {entries: result, reset: reset(dir)}
    break
  }

  case 'apply': {
    result = await applyReown(dir, plan(), {journalPath: extra})
    break
  }

  case 'apply-settled': {
    result = await applyReown(dir, plan(true), {journalPath: extra})
    break
  }

  case 'undo': {
    result = await undoReown(extra)
    break
  }

  case 'survey': {
    result = await surveyReown(dir, plan())
    break
  }

  case 'walk': {
    result = plainWalk(dir)
    break
  }

  case 'raw': {
    result = rawFloor(dir)
    break
  }

  case 'reset': {
    result = reset(dir)
    break
  }

  default: {
    throw new Error(`unknown op ${op}`)
  }
}

const ms = Number(process.hrtime.bigint() - t0) / 1e6
const cpu = process.cpuUsage(cpu0)
console.log(JSON.stringify({cpu_ms: Math.round((cpu.user + cpu.system) / 1000), max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024), ms: Math.round(ms), op, result}))
}

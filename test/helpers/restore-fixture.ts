import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import type {SavedSpec} from './craft-archive.js'
import {ha, type HaRun, tempDir} from './cli.js'

/**
 * Two controller roots on one machine, as in the issue: "primary" with uids from 901, "secondary"
 * with the same names on uids from 1901. The secondary's data directory holds what the shared
 * storage holds after a failover: the primary's data, owned by the primary's uids.
 */
export const dataDirOf = (root: string) => join(root, 'var/opt/sun/xvm')
export const backupsOf = (root: string) => join(dataDirOf(root), '.ha/backups')
export const lockOf = (root: string) => join(dataDirOf(root), '.ha/ha.lock')

export interface Pair {
  config: string
  dir: string
  primary: string
  secondary: string
  /** ha restore ... --yes --config <config> --node secondary (no terminal: --yes confirms) */
  restore: (...args: string[]) => HaRun
}

export function makePair(t: Parameters<typeof tempDir>[0], options: {varTmp?: boolean} = {}): Pair {
  const dir = tempDir(t, 'ha-restore-')
  const primary = join(dir, 'primary')
  const secondary = join(dir, 'secondary')
  makeControllerRoot(primary, {hostname: 'ctl-a', uidBase: 901})
  makeControllerRoot(secondary, {hostname: 'ctl-b', uidBase: 1901})
  // Staging goes to the root's /var/tmp when there is one (the usual case on a real host).
  if (options.varTmp !== false) mkdirSync(join(secondary, 'var/tmp'), {mode: 0o1777, recursive: true})
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({primaryRoot: primary, secondaryRoot: secondary}))
  mkdirSync(backupsOf(secondary), {mode: 0o700, recursive: true})
  const restore = (...args: string[]) => ha(['restore', ...args, '--yes', '--config', config, '--node', 'secondary'])
  return {config, dir, primary, restore, secondary}
}

/** The storage moves: the secondary's data directory becomes the primary's, owners and all. */
export function moveStorage(pair: Pair): void {
  execFileSync('rm', ['-rf', dataDirOf(pair.secondary)])
  execFileSync('cp', ['-a', dataDirOf(pair.primary), dataDirOf(pair.secondary)])
}

/** Places an archive in the secondary's backups directory with a passing verification record. */
export function placeArchive(pair: Pair, id: string, bytes: Buffer, verified = true): string {
  const file = join(backupsOf(pair.secondary), `${id}.tar.gz`)
  writeFileSync(file, bytes, {mode: 0o600})
  if (verified) writeFileSync(join(backupsOf(pair.secondary), `${id}.verify.json`), JSON.stringify({at: new Date().toISOString(), ok: true, problems: []}))
  return file
}

/**
 * Every entry below `dir` with its type, mode, owner and content (or link target): "changed
 * nothing" is this map before and after. The lock file comes and goes with every run and is left out.
 */
export function snapshot(dir: string, skip: string[] = []): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (rel: string) => {
    const full = join(dir, rel)
    const st = lstatSync(full)
    let what = ''
    if (st.isSymbolicLink()) what = `link:${readlinkSync(full)}`
    else if (st.isFile()) what = `file:${createHash('sha256').update(readFileSync(full)).digest('hex')}`
    else if (st.isDirectory()) what = 'dir'
    else what = 'other'
    out.set(rel || '.', `${what} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`)
    if (st.isDirectory()) for (const name of readdirSync(full).sort()) {
      const child = rel ? `${rel}/${name}` : name
      if (!skip.includes(child)) walk(child)
    }
  }

  if (existsSync(dir)) walk('')
  return out
}

export function secondarySnapshot(pair: Pair): Map<string, string> {
  return snapshot(pair.secondary, ['var/opt/sun/xvm/.ha/ha.lock'])
}

export function changedPaths(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()])
  return [...keys].filter((k) => before.get(k) !== after.get(k)).sort()
}

export function fileSha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

export const version = '2.1.0.1234'

/** A well-formed backup of the primary, as `ha backup` would write it, for crafting variants. */
export function savedSpecs(pair: Pair): SavedSpec[] {
  const passwd = readFileSync(join(pair.primary, 'etc/passwd'), 'utf8')
  const group = readFileSync(join(pair.primary, 'etc/group'), 'utf8')
  const root = {gid: 0, group: 'root', uid: 0, user: 'root'}
  return [
    {...root, content: passwd, mode: 0o644, path: '/etc/passwd', role: 'accounts'},
    {...root, content: group, mode: 0o644, path: '/etc/group', role: 'accounts'},
    {...root, content: 'ctl-a\n', mode: 0o644, path: '/etc/hostname', role: 'identity'},
    {...root, mode: 0o755, path: '/etc/opt/sun/xvm', type: 'directory'},
    {content: 'controller=ctl-a\nport=8443\n', gid: 901, group: 'xvm', mode: 0o644, path: '/etc/opt/sun/xvm/satellite.conf', uid: 901, user: 'xvm'},
    {content: '#!/bin/sh\necho helper\n', gid: 901, group: 'xvm', mode: 0o4750, path: '/etc/opt/sun/xvm/helper', uid: 0, user: 'root'},
    {...root, mode: 0o777, path: '/etc/opt/sun/xvm/localtime', target: '/usr/share/zoneinfo/UTC', type: 'symlink'},
    {...root, content: `product.version=${version}\n`, mode: 0o644, path: '/n1gc-setup/.version.properties'},
  ]
}

export {tempDir}

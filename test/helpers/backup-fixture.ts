import {createHash} from 'node:crypto'
import {existsSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {ha, tempDir} from './cli.js'

/** One controller root and a config for it, for the backup tests (test/integration/backup*.test.ts). */
export const backupsDir = (root: string) => join(root, 'var/opt/sun/xvm/.ha/backups')
export const archives = (root: string) => readdirSync(backupsDir(root)).filter((n) => n.endsWith('.tar.gz') && !n.startsWith('.')).sort()
export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

export interface SetupOptions {
  include?: string[]
  keep?: number
  root?: Parameters<typeof makeControllerRoot>[1]
  storage?: Record<string, string>
}

/** A controller root and a config for it; every test gets its own. */
export function setup(t: Parameters<typeof tempDir>[0], options: SetupOptions = {}) {
  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root, options.root)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({include: options.include, keep: options.keep, primaryRoot: root, storage: options.storage}))
  const run = (...args: string[]) => ha([...args, '--config', config, '--node', 'primary'])
  return {config, dir, root, run}
}

/** Every file below `dir` with its content hash: "changes nothing" is checked against this. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  if (!existsSync(dir)) return out
  for (const name of readdirSync(dir, {recursive: true}) as string[]) {
    const full = join(dir, name)
    const s = statSync(full)
    out[name] = s.isFile() ? sha256(readFileSync(full)) : 'dir'
  }

  return out
}

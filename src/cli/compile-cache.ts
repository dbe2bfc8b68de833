import {lstatSync, mkdirSync} from 'node:fs'
import module from 'node:module'

/** Where root's ha keeps Node's compiled code between runs. */
export const compileCacheDir = '/var/cache/ha/node-compile-cache'

/**
 * Node's on-disk compile cache (module.enableCompileCache, Node 22.1 and later; on Node 20 it does
 * not exist and this does nothing): the modules a start of ha loads are compiled once and read
 * back afterwards. bin/run.js calls this before it loads anything else.
 *
 * Only for root, and only in a directory that nobody but root can write to, all the way from /:
 * whatever is in that directory is run as code, as root, at the next start of ha. So not in
 * /tmp (Node's default: world-writable, another user can plant a cache there before root's first
 * run), nor under $HOME (sudo may keep the invoking user's), nor anywhere for another user. The
 * two folders ha makes (/var/cache/ha and the cache) are made mode 0700; /var/cache itself is never
 * made. Any doubt (a symlink, another owner, group or world write, an error) means no cache: ha
 * then runs as on Node 20.
 */
export function enableCompileCache(): void {
  const enable = (module as {enableCompileCache?: (dir: string) => unknown}).enableCompileCache
  if (typeof enable !== 'function' || process.getuid?.() !== 0) return
  try {
    for (const dir of ['/var/cache/ha', compileCacheDir]) {
      try {
        mkdirSync(dir, {mode: 0o700})
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return
      }
    }

    if (!onlyRootWrites(compileCacheDir)) return
    enable(compileCacheDir)
  } catch {}
}

/** The path and every folder above it: real directories, owned by root, writable by root only. */
export function onlyRootWrites(path: string): boolean {
  const parts = path.split('/').filter(Boolean)
  for (let n = 0; n <= parts.length; n++) {
    const stats = lstatSync(`/${parts.slice(0, n).join('/')}`)
    if (!stats.isDirectory() || stats.uid !== 0 || (stats.mode & 0o022) !== 0) return false
  }

  return true
}

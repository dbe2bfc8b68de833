import {isAbsolute, join, normalize} from 'node:path'

/**
 * Every host-side path is resolved under the node's `root` (default "/"). This is how one
 * machine can hold two controllers' /etc side by side in the lab and in tests; on a real host
 * root is "/" and paths are unchanged. A path that would climb out of the root is refused.
 */
export function underRoot(root: string, hostPath: string): string {
  if (!isAbsolute(hostPath)) throw new Error(`host path must be absolute: ${hostPath}`)
  const clean = normalize(hostPath)
  if (clean.split('/').includes('..')) throw new Error(`host path must not contain "..": ${hostPath}`)
  return root === '/' ? clean : join(root, clean)
}

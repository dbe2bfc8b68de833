import {join} from 'node:path'

import {underRoot} from '../fs/under-root.js'

/**
 * Where `ha restore` writes besides the installed files themselves, as one rule that restore
 * follows and `ha check` measures (check cannot run restore's code on a remote node, so it asks
 * the node the one question this rule depends on and applies the same function to the answer).
 *
 * Staging goes to the root's /var/tmp when it is a real directory (not a symlink): usually the
 * same filesystem as /etc, so installing is a rename of the staged copy. Otherwise it goes
 * under <data_dir>/.ha/staging, on the shared storage.
 */
export const preferredStagingHostPath = '/var/tmp'

export function stagingParentFor(root: string, stateDir: string, preferredIsRealDirectory: boolean): string {
  return preferredIsRealDirectory ? underRoot(root, preferredStagingHostPath) : join(stateDir, 'staging')
}

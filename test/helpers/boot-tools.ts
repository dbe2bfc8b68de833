import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

import {repoRoot} from './cli.js'

/**
 * NetworkManager's nmcli and netplan's generator, unpacked from Debian's packages into
 * .cache/unpacked by scripts/ensure-deps.mjs (never installed: their daemons would take the
 * machine's interfaces over), and run from there with their libraries beside them.
 */
const unpacked = join(repoRoot, '.cache/unpacked')
const libraries = [join(unpacked, 'usr/lib/x86_64-linux-gnu'), join(unpacked, 'usr/lib/aarch64-linux-gnu'), join(unpacked, 'lib/x86_64-linux-gnu'), join(unpacked, 'usr/lib')]

export const bootTools = {
  env: {...process.env, LC_ALL: 'C', LD_LIBRARY_PATH: [...libraries, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':')},
  netplanGenerate: join(unpacked, 'usr/libexec/netplan/generate'),
  nmcli: join(unpacked, 'usr/bin/nmcli'),
  /** Why the tools cannot run here, or undefined when both answer. */
  problem(): string | undefined {
    for (const tool of [this.nmcli, this.netplanGenerate]) {
      if (!existsSync(tool)) return `needs ${tool} (node scripts/ensure-deps.mjs unpacks it)`
    }

    const nm = spawnSync(this.nmcli, ['--version'], {encoding: 'utf8', env: this.env})
    if (nm.status !== 0) return `${this.nmcli} --version failed: ${nm.stderr || nm.error}`
    return undefined
  },
  /** The packages they came from, for the test's report (e.g. network-manager_1.42.4-1+deb12u1_amd64.deb). */
  versions(): string {
    return readdirSync(join(repoRoot, '.cache/debs')).filter((name) => /^(network-manager|netplan\.io)_/.test(name)).join(', ')
  },
}

import {setTimeout as sleep} from 'node:timers/promises'

import {HaError} from '../core/errors.js'
import type {Step, StepContext} from './step.js'

const backupArgv = (node: string) => ['ha', 'backup', '--quiet', '--node', node]
/** The host keys this backup saves: after the takeover the standby must present exactly these. */
export const hostKeysArgv = ['sh', '-c', 'cat /etc/ssh/ssh_host_*_key.pub']

export function parseHostKeys(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/).slice(0, 2).join(' '))
    .filter((l) => /^(ssh|ecdsa)-\S+ [A-Za-z0-9+/=]+$/.test(l))
    .sort()
}

/** The identity mode moves the host keys with the service: they are read here to be expected after the restore. */
const readsKeys = (ctx: Pick<StepContext, 'config'>) => ctx.config.failover.mode === 'identity'

/** A last ha backup on the active node, so the takeover restores the state of this minute; waits for a cron backup's lock. */
export const finalBackup: Step = {
  actions: (ctx) => [...(readsKeys(ctx) ? [{argv: hostKeysArgv, on: ctx.from}] : []), {argv: backupArgv(ctx.from), on: ctx.from}],
  id: 'final-backup',
  on: (ctx) => ctx.from,
  async post(ctx) {
    if (ctx.data('final-backup').done) return true
    // A fenced node cannot back up: the newest backup on the storage is what there is.
    return Boolean(ctx.data('confirm-fenced').confirmed)
  },
  async run(ctx) {
    // The keys are read while the backup runs (independent; one round trip less).
    const keys = (async () => {
      if (!readsKeys(ctx)) return
      const read = parseHostKeys((await ctx.act({argv: hostKeysArgv, on: ctx.from})).stdout.toString())
      await ctx.remember({host_keys: read})
    })()
    // Both end before the step does (a failure of one never leaves the other running unseen).
    for (const r of await Promise.allSettled([keys, backup(ctx)])) if (r.status === 'rejected') throw r.reason
    await ctx.remember({done: true})
  },
  title: 'Final backup on the active node',
}

async function backup(ctx: StepContext): Promise<void> {
  const deadline = Date.now() + ctx.config.failover.backup_lock_wait * 1000
  for (;;) {
    const r = await ctx.act({argv: backupArgv(ctx.from), on: ctx.from}, {allow: [0, 3, 11], timeoutMs: 30 * 60_000})
    if (r.code === 0 || r.code === 3) break
    if (Date.now() > deadline) {
      throw new HaError(`final backup: another ha operation on ${ctx.from} still holds the lock after ${ctx.config.failover.backup_lock_wait}s`, {
        actions: ['see what runs (ps -ef | grep "ha ") on the active node, then ha failover --resume'],
        exitCode: 5,
      })
    }

    ctx.progress(`a backup is running on ${ctx.from} (its lock is held); waiting for it`)
    await ctx.waiting(() => sleep(1000))
  }
}

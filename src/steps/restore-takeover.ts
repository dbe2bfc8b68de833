import {HaError} from '../core/errors.js'
import {hostKeysArgv, parseHostKeys} from './final-backup.js'
import {restoreArgv, restoreUntilDone, resumeArgv, undoArgv} from './restore-run.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'from' | 'to'>

const restore = (ctx: Ctx): Action => ({argv: restoreArgv(ctx.to, 'takeover'), on: ctx.to})
const resume = (ctx: Ctx): Action => ({argv: resumeArgv(ctx.to), on: ctx.to})
const undo = (ctx: Ctx): Action => ({argv: undoArgv(ctx.to), on: ctx.to})
const keys = (ctx: Ctx): Action => ({argv: hostKeysArgv, on: ctx.to})

/**
 * harestore on the node taking over, as the CLI: its exit codes and JSON envelope are the
 * contract (5: stopped mid-way, finish it with --resume). Afterwards the node holds the active
 * node's identity, ssh host keys included: those keys are what the node must present from now on.
 */
export const restoreTakeover: Step = {
  actions: (ctx) => [restore(ctx), resume(ctx), undo(ctx), keys(ctx)],
  id: 'restore-takeover',
  on: (ctx) => ctx.to,
  async post(ctx) {
    return Array.isArray(ctx.data('restore-takeover').host_keys)
  },
  async run(ctx) {
    // The keys the final backup saved go into known_hosts for this node's address before the
    // restore installs them (the node's sshd presents them from its next connection on).
    const saved = ctx.data('final-backup').host_keys as string[] | undefined
    if (saved && !ctx.data('restore-takeover').expect_keys) await ctx.remember({expect_keys: saved})
    if (!ctx.data('restore-takeover').restored) {
      await restoreUntilDone(ctx, {restore: restore(ctx), resume: resume(ctx), undo: undo(ctx)}, 'takeover')
      await ctx.remember({restored: true})
    }

    const hostKeys = parseHostKeys((await ctx.act(keys(ctx))).stdout.toString())
    if (hostKeys.length === 0) throw new HaError(`${ctx.to}: no ssh host key after the restore (/etc/ssh/ssh_host_*_key.pub)`)
    if (saved && JSON.stringify(saved) !== JSON.stringify(hostKeys)) {
      throw new HaError(`${ctx.to}: after the restore its host keys are not the ones the final backup saved on ${ctx.from}; refusing to trust it`, {
        actions: [`compare /etc/ssh/ssh_host_*_key.pub on ${ctx.to} with the backup (ha backup list on ${ctx.to})`],
      })
    }

    await ctx.remember({host_keys: hostKeys})
  },
  title: 'Restore the saved state as a takeover (ha restore --takeover) on the node taking over',
}

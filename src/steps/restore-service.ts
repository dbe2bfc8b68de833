import {restoreArgv, restoreUntilDone, resumeArgv, undoArgv} from './restore-run.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'from' | 'to'>

const restore = (ctx: Ctx): Action => ({argv: restoreArgv(ctx.to, 'service'), on: ctx.to})
const resume = (ctx: Ctx): Action => ({argv: resumeArgv(ctx.to), on: ctx.to})
const undo = (ctx: Ctx): Action => ({argv: undoArgv(ctx.to), on: ctx.to})

/**
 * failover.mode: service. harestore without --takeover on the node taking over: the product's
 * saved state (its config, cron, the version file) in place and the data directory re-owned by
 * name; the node keeps its own hostname, /etc/hosts, ssh host keys and network configuration.
 */
export const restoreService: Step = {
  actions: (ctx) => [restore(ctx), resume(ctx), undo(ctx)],
  id: 'restore-service',
  on: (ctx) => ctx.to,
  async post(ctx) {
    return ctx.data('restore-service').restored === true
  },
  async run(ctx) {
    await restoreUntilDone(ctx, {restore: restore(ctx), resume: resume(ctx), undo: undo(ctx)}, 'service')
    await ctx.remember({restored: true})
  },
  title: 'Restore the saved state of the service (ha restore, no identity files) on the node taking over',
}

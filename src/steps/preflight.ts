import {HaError} from '../core/errors.js'
import type {Step} from './step.js'

/** ha check's checks, roles as the epoch says; any failure stops the failover before it touches anything. */
export const preflight: Step = {
  actions: () => [{argv: ['ha', 'check'], on: 'here'}],
  id: 'preflight',
  on: () => 'here',
  async post(ctx) {
    return ctx.data('preflight').passed === true
  },
  async run(ctx) {
    const {runCheck} = await import('../check/check.js')
    const fromUp = await ctx.reachable(ctx.from)
    let failed: string[] = []
    await ctx.act({argv: ['ha', 'check'], on: 'here'}, {
      async inProcess() {
        const {report} = await runCheck(ctx.config, {connect: (node) => ctx.host(node), signal: ctx.signal})
        // An active node that does not answer is the fencing step's question, not a reason to
        // stop here: then only what the node taking over says about itself must pass.
        failed = report.checks
          // No recent backup is what the final backup step is about to fix, where the active node answers.
          .filter((c) => c.status === 'fail' && (fromUp ? c.id !== 'backup_age' : c.node === ctx.to))
          .map((c) => `${c.id}${c.node ? ` (${c.node})` : ''}: ${c.summary}`)
        // check read the roles anew, by the same rules: they must still be this failover's.
        const {roles} = report
        if (roles && roles.active !== ctx.from) failed.push(`roles: ha check reads ${roles.active} as active (epoch ${roles.epoch}), but this failover starts from ${ctx.from}`)
      },
    })
    if (failed.length > 0) {
      throw new HaError(`preflight: ha check found problems, nothing was changed:\n  ${failed.join('\n  ')}`, {actions: ['run ha check for the details and fixes, then ha failover again'], exitCode: 3})
    }

    await ctx.remember({passed: true})
  },
  title: 'Preflight: ha check passes (versions, service IPs, storage, backup, space)',
}

import {setTimeout as sleep} from 'node:timers/promises'

import type {Config, NodeName} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import type {Host} from '../hosts/host.js'
import {askService} from '../net/service-answer.js'
import {holdsAddress} from './observe.js'
import type {Action, Step} from './step.js'

const probe = (config: Config): Action | undefined => {
  const v = config.failover.verify
  if (!v) return undefined
  return v.http ? {argv: ['GET', v.http, `expect ${v.status}`], on: 'here'} : {argv: v.argv!, on: 'here'}
}

/**
 * Done only when it is seen done: the service answers (the configured probe, from where ha runs),
 * the old node holds no service IP, and ha check passes with the roles swapped.
 */
export const verify: Step = {
  actions: (ctx) => [...(probe(ctx.config) ? [probe(ctx.config)!] : []), {argv: ['ha', 'check'], on: 'here'}],
  id: 'verify',
  on: () => 'here',
  async post(ctx) {
    return ctx.data('verify').verified === true
  },
  async run(ctx) {
    const action = probe(ctx.config)
    const v = ctx.config.failover.verify
    if (action && v) {
      let answer = ''
      let ok = false
      // The service may need a moment after its start script returns; bounded.
      for (let attempt = 0; attempt < 20 && !ok; attempt++) {
        if (attempt > 0) await ctx.waiting(() => sleep(500))
        await ctx.act(action, {
          async inProcess() {
            const asked = await askService(v, ctx.signal)
            answer = asked.answer
            ok = asked.ok
          },
        })
      }

      if (!ok) throw new HaError(`verify: the service does not answer as expected (${answer})`, {actions: ['look at the service on the new active node, then ha failover --resume']})
      await ctx.remember({answer})
    }

    if (!ctx.data('confirm-fenced').confirmed) {
      const from = await ctx.host(ctx.from)
      for (const ip of ctx.config.service_ips) {
        if (await holdsAddress(from, ip.address)) throw new HaError(`verify: ${ctx.from} still holds ${ip.address}`)
      }
    }

    const {runCheck} = await import('../check/check.js')
    let failed: string[] = []
    await ctx.act({argv: ['ha', 'check'], on: 'here'}, {
      async inProcess() {
        // Its own connections, not the run's: a node whose sshd died mid-run still answers on the
        // sessions the run opened before, and reachability is what the next admin will need. A
        // fenced node already found silent in this run is not waited on again.
        const opened: Host[] = []
        const connect = async (node: NodeName) => {
          const host = await ctx.connectAnew(node)
          opened.push(host)
          return host
        }

        const {report} = await runCheck(ctx.config, {connect, signal: ctx.signal}).finally(() => Promise.all(opened.map((h) => h.close().catch(() => {}))))
        failed = report.checks.filter((c) => c.status === 'fail' && (!ctx.data('confirm-fenced').confirmed || c.node === ctx.to)).map((c) => `${c.id}${c.node ? ` (${c.node})` : ''}: ${c.summary}`)
        // Done means swapped: ha check, reading the epoch anew, sees the node taking over as active.
        const {roles} = report
        if (roles?.active !== ctx.to) failed.push(roles ? `roles: ha check reads ${roles.active} as active (epoch ${roles.epoch}), not ${ctx.to}` : 'roles: ha check cannot decide which node is active (see its roles row)')
      },
    })
    if (failed.length > 0) throw new HaError(`verify: ha check fails after the takeover:\n  ${failed.join('\n  ')}`, {actions: ['run ha check for the fixes, then ha failover --resume']})
    await ctx.remember({verified: true})
  },
  title: 'Verify: the service answers on the new active node, the old one holds no service IP, ha check passes',
}

import {HaError} from '../core/errors.js'
import {serviceState} from './observe.js'
import type {Step} from './step.js'

export const stopServices: Step = {
  actions: (ctx) => [{argv: ctx.config.services.stop!, on: ctx.from}],
  id: 'stop-services',
  on: (ctx) => ctx.from,
  async post(ctx) {
    if (ctx.data('confirm-fenced').confirmed) return true
    return (await serviceState(await ctx.host(ctx.from), ctx.config)) === 'stopped'
  },
  async run(ctx) {
    await ctx.act({argv: ctx.config.services.stop!, on: ctx.from}, {timeoutMs: 10 * 60_000})
    if ((await serviceState(await ctx.host(ctx.from), ctx.config)) !== 'stopped') {
      throw new HaError(`${ctx.from}: the services still run after services.stop`, {actions: ['stop them by hand, then ha failover --resume']})
    }
  },
  title: 'Stop the services on the active node',
}

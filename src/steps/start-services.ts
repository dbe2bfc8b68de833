import {HaError} from '../core/errors.js'
import {serviceState} from './observe.js'
import type {Step} from './step.js'

export const startServices: Step = {
  actions: (ctx) => [{argv: ctx.config.services.start!, on: ctx.to}],
  id: 'start-services',
  on: (ctx) => ctx.to,
  async post(ctx) {
    return (await serviceState(await ctx.host(ctx.to), ctx.config)) === 'running'
  },
  async run(ctx) {
    await ctx.act({argv: ctx.config.services.start!, on: ctx.to}, {timeoutMs: 10 * 60_000})
    if ((await serviceState(await ctx.host(ctx.to), ctx.config)) !== 'running') {
      throw new HaError(`${ctx.to}: services.start returned, but services.status does not say running`, {actions: ['look at the service log on the node, then ha failover --resume']})
    }
  },
  title: 'Start the services on the new active node',
}

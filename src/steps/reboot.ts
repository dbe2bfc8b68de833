import {setTimeout as sleep} from 'node:timers/promises'

import {HaError, InterruptedError} from '../core/errors.js'
import {bootId} from './observe.js'
import type {Step} from './step.js'

const resumeCommand = 'ha failover --resume'

/**
 * The node taking over reboots into its new identity (seed 001): sshd drops and comes back with a
 * new boot id, within failover.reboot_timeout, presenting exactly the host key the restore put
 * there (the runner refuses any other). A node that does not come back stops the run with
 * exit 5: --resume finds it rebooted (another boot id than before) and goes on.
 */
export const reboot: Step = {
  actions: (ctx) => (ctx.config.failover.reboot ? [{argv: ctx.config.nodes[ctx.to].reboot_command, on: ctx.to}] : []),
  id: 'reboot',
  on: (ctx) => ctx.to,
  async post(ctx) {
    if (!ctx.config.failover.reboot) return true
    const before = ctx.data('reboot').boot_before
    if (typeof before !== 'string') return false
    if (!(await ctx.reachable(ctx.to))) return false
    return (await bootId(await ctx.host(ctx.to))) !== before
  },
  async run(ctx) {
    let before = ctx.data('reboot').boot_before as string | undefined
    // A run stopped after asking for the reboot: the node may still be down, or up again. Ask
    // (again) only when it answers with the boot id it had before.
    const ask = before === undefined || ((await ctx.reachable(ctx.to)) && (await bootId(await ctx.host(ctx.to))) === before)
    if (before === undefined) {
      before = await bootId(await ctx.host(ctx.to))
      await ctx.remember({boot_before: before})
    }

    if (ask) {
      // The session may die with the node before the command's status arrives: that is a reboot too.
      await ctx.act({argv: ctx.config.nodes[ctx.to].reboot_command, on: ctx.to}, {allow: [0, 255]}).catch((error: Error) => ctx.progress(`${ctx.to}: ${error.message.split('\n')[0]}`))
    }

    await ctx.drop(ctx.to)
    const limit = ctx.config.failover.reboot_timeout
    const deadline = Date.now() + limit * 1000
    ctx.progress(`waiting for ${ctx.to} to come back (up to ${limit}s)`)
    // Ctrl-C ends the wait, not the reboot: the step stops unfinished (never "did not come back"),
    // and --resume waits for the node again.
    const interrupted = () => new InterruptedError(`${ctx.to} was asked to reboot; the wait for it ended, ${resumeCommand} waits for it again`)
    const after = await ctx
      .waiting(async (): Promise<string | undefined> => {
        while (Date.now() < deadline) {
          if (ctx.signal?.aborted) throw interrupted()
          await sleep(250)
          if (!(await ctx.reachable(ctx.to))) continue
          const now: string = await bootId(await ctx.host(ctx.to)).catch(() => before!)
          if (now !== before) return now
          await ctx.drop(ctx.to)
        }

        return undefined
      })
      .catch((error: Error) => {
        throw error instanceof InterruptedError ? interrupted() : error
      })
    if (after) {
      await ctx.remember({boot_after: after})
      return
    }

    throw new HaError(`${ctx.to} did not come back from its reboot within ${limit}s (failover.reboot_timeout)`, {
      actions: [`once ${ctx.to} is up again: ha failover --resume`],
      exitCode: 5,
    })
  },
  title: 'Reboot the node taking over and wait for it (new boot id, the restored host key)',
}

import {setTimeout as sleep} from 'node:timers/promises'

import {HaError, InterruptedError} from '../core/errors.js'
import type {NodeName} from '../config/schema.js'
import {bootId} from './observe.js'
import type {Step, StepContext} from './step.js'

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

    const after = await waitForNewBoot(ctx, ctx.to, before, {command: resumeCommand, waitsForIt: true})
    await ctx.remember({boot_after: after})
  },
  title: 'Reboot the node taking over and wait for it (new boot id, the restored host key)',
}

/**
 * After a node was asked to reboot: waits, within failover.reboot_timeout, until it answers with
 * another boot id than `before`, and returns that id. Ctrl-C ends the wait, not the reboot: the
 * step stops unfinished (never "did not come back"), and `again` says what goes on (the command,
 * and whether it waits for the node itself). A node that stays away stops the run with exit 5.
 */
export async function waitForNewBoot(ctx: StepContext, node: NodeName, before: string, again: {command: string; waitsForIt: boolean}): Promise<string> {
  await ctx.drop(node)
  const limit = ctx.config.failover.reboot_timeout
  const deadline = Date.now() + limit * 1000
  ctx.progress(`waiting for ${node} to come back (up to ${limit}s)`)
  const next = again.waitsForIt ? `${again.command} waits for it again` : `once it is up again: ${again.command}`
  const interrupted = () => new InterruptedError(`${node} was asked to reboot; the wait for it ended, ${next}`)
  const after = await ctx
    .waiting(async (): Promise<string | undefined> => {
      while (Date.now() < deadline) {
        if (ctx.signal?.aborted) throw interrupted()
        await sleep(250)
        if (!(await ctx.reachable(node))) continue
        const now: string = await bootId(await ctx.host(node)).catch(() => before)
        if (now !== before) return now
        await ctx.drop(node)
      }

      return undefined
    })
    .catch((error: Error) => {
      throw error instanceof InterruptedError ? interrupted() : error
    })
  if (after) return after
  throw new HaError(`${node} did not come back from its reboot within ${limit}s (failover.reboot_timeout)`, {
    actions: [`once ${node} is up again: ${again.command}`],
    exitCode: 5,
  })
}

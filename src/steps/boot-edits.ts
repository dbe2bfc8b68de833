import {HaError} from '../core/errors.js'
import {addition, type BootConfigDriver, BootConfigRefusal, dryRun, removals, type ServiceIp} from '../drivers/boot-config/index.js'
import type {Host} from '../hosts/host.js'
import {bootFiles} from './observe.js'
import type {Action, StepContext} from './step.js'

/**
 * The boot configuration edits of the steps that move service IPs (release-ips, hold-ips,
 * take-ips, put-back-ips): the files read on the node, the driver's edit, the runner's write of
 * each file it changes. Every edit of the step is tried first on the files as read (a dry run),
 * so a file the driver refuses stops the step before its first change; the refusal names the node.
 */
function onHost<T>(host: Host, work: () => T): T {
  try {
    return work()
  } catch (error) {
    if (!(error instanceof BootConfigRefusal)) throw error
    throw new HaError(`${host.name}: ${error.message}`, {actions: error.actions, details: {...error.details, host: host.name}})
  }
}

/** Refuses (naming the node and the file) unless every edit of these IPs can be made. */
export async function tryBootEdits(host: Host, boot: BootConfigDriver, ips: ServiceIp[], op: 'add' | 'remove'): Promise<void> {
  const files = await bootFiles(host, boot)
  onHost(host, () => dryRun(boot, files, ips, op))
}

/** `address` out of every file of the node that brings it up, each written by the runner. */
export async function removeFromBoot(ctx: StepContext, host: Host, boot: BootConfigDriver, address: string, action: Action): Promise<void> {
  const files = await bootFiles(host, boot)
  for (const edit of onHost(host, () => removals(boot, files, address))) await ctx.act(action, {content: edit.text, path: edit.path})
}

/** `ip` into the file of the node that configures its interface, unless a file brings it up already. */
export async function addToBoot(ctx: StepContext, host: Host, boot: BootConfigDriver, ip: ServiceIp, action: Action): Promise<void> {
  const files = await bootFiles(host, boot)
  const edit = onHost(host, () => addition(boot, files, ip))
  if (edit) await ctx.act(action, {content: edit.text, path: edit.path})
}

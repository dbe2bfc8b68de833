import {HaError} from '../core/errors.js'
import {hostKeysArgv, parseHostKeys} from './final-backup.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'from' | 'to'>

const restore = (ctx: Ctx): Action => ({argv: ['ha', 'restore', '--takeover', '--yes', '--json', '--node', ctx.to], on: ctx.to})
const resume = (ctx: Ctx): Action => ({argv: ['ha', 'restore', '--resume', '--json', '--node', ctx.to], on: ctx.to})
const undo = (ctx: Ctx): Action => ({argv: ['ha', 'restore', '--undo', '--yes', '--json', '--node', ctx.to], on: ctx.to})
const keys = (ctx: Ctx): Action => ({argv: hostKeysArgv, on: ctx.to})

/** What restore's exit-5 envelope says comes next: finish the run (--resume) or put it back first (--undo). */
function nextOf(stdout: string): 'resume' | 'undo' {
  try {
    const envelope = JSON.parse(stdout) as {error?: {actions?: string[]}}
    return /ha restore --undo/.test(envelope.error?.actions?.[0] ?? '') ? 'undo' : 'resume'
  } catch {
    return 'resume'
  }
}

function envelopeError(stdout: string): string {
  try {
    const envelope = JSON.parse(stdout) as {error?: {message?: string}}
    return envelope.error?.message ?? ''
  } catch {
    return stdout.trim().slice(-500)
  }
}

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
      let r = await ctx.act(restore(ctx), {allow: [0, 1, 2, 3, 4, 5, 11], timeoutMs: 60 * 60_000})
      // A restore stopped earlier (this run killed mid-way): restore says what finishes it.
      if (r.code === 5 && nextOf(r.stdout.toString()) === 'resume') {
        r = await ctx.act(resume(ctx), {allow: [0, 1, 2, 3, 4, 5, 11], timeoutMs: 60 * 60_000})
      } else if (r.code === 5) {
        const u = await ctx.act(undo(ctx), {allow: [0, 1, 2, 3, 4, 5, 11], timeoutMs: 60 * 60_000})
        if (u.code === 0) r = await ctx.act(restore(ctx), {allow: [0, 1, 2, 3, 4, 5, 11], timeoutMs: 60 * 60_000})
        else r = u
      }

      if (r.code !== 0) {
        throw new HaError(`ha restore --takeover on ${ctx.to} exited ${r.code}: ${envelopeError(r.stdout.toString()) || r.stderr.toString().trim()}`, {
          actions: [`read it on ${ctx.to}: ha restore --dry-run --takeover --node ${ctx.to}`, 'fix what it says, then ha failover --resume'],
          exitCode: r.code === 11 ? 11 : 1,
        })
      }

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

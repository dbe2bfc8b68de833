import type {NodeName} from '../config/schema.js'
import {HaError} from '../core/errors.js'
import type {Action, StepContext} from './step.js'

/**
 * harestore as the failover steps run it on the node taking over: the CLI, whose exit codes and
 * JSON envelope are the contract (5: stopped mid-way; its first action says whether --resume
 * finishes it or --undo must put it back first). takeover also installs the identity files
 * (restore-takeover); service does not (restore-service, and the cluster agent's start).
 */
export type RestoreKind = 'service' | 'takeover'

export const restoreArgv = (node: NodeName, kind: RestoreKind): string[] => ['ha', 'restore', ...(kind === 'takeover' ? ['--takeover'] : []), '--yes', '--json', '--node', node]
export const resumeArgv = (node: NodeName): string[] => ['ha', 'restore', '--resume', '--json', '--node', node]
export const undoArgv = (node: NodeName): string[] => ['ha', 'restore', '--undo', '--yes', '--json', '--node', node]

/** What restore's exit-5 envelope says comes next: finish the run (--resume) or put it back first (--undo). */
function nextOf(stdout: string): 'resume' | 'undo' {
  try {
    const envelope = JSON.parse(stdout) as {error?: {actions?: string[]}}
    return /ha restore --undo/.test(envelope.error?.actions?.[0] ?? '') ? 'undo' : 'resume'
  } catch {
    return 'resume'
  }
}

export function envelopeError(stdout: string): string {
  try {
    const envelope = JSON.parse(stdout) as {error?: {message?: string}}
    return envelope.error?.message ?? ''
  } catch {
    return stdout.trim().slice(-500)
  }
}

/** The error envelope's details (restore names archive_version and host_version when they differ). */
function envelopeDetails(stdout: string): Record<string, unknown> {
  try {
    const details = (JSON.parse(stdout) as {error?: {details?: unknown}}).error?.details
    return typeof details === 'object' && details !== null && !Array.isArray(details) ? (details as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

const restoreExits = [0, 1, 2, 3, 4, 5, 11]
const hour = 60 * 60_000

/** Runs the restore, finishing or undoing one an earlier run left half-done; throws unless it ends with exit 0. */
export async function restoreUntilDone(ctx: StepContext, actions: {restore: Action; resume: Action; undo: Action}, kind: RestoreKind): Promise<void> {
  let r = await ctx.act(actions.restore, {allow: restoreExits, timeoutMs: hour})
  if (r.code === 5 && nextOf(r.stdout.toString()) === 'resume') {
    r = await ctx.act(actions.resume, {allow: restoreExits, timeoutMs: hour})
  } else if (r.code === 5) {
    const u = await ctx.act(actions.undo, {allow: restoreExits, timeoutMs: hour})
    r = u.code === 0 ? await ctx.act(actions.restore, {allow: restoreExits, timeoutMs: hour}) : u
  }

  if (r.code !== 0) {
    const flag = kind === 'takeover' ? ' --takeover' : ''
    throw new HaError(`ha restore${flag} on ${ctx.to} exited ${r.code}: ${envelopeError(r.stdout.toString()) || r.stderr.toString().trim()}`, {
      actions: [`read it on ${ctx.to}: ha restore --dry-run${flag} --node ${ctx.to}`, 'fix what it says, then ha failover --resume'],
      details: {...envelopeDetails(r.stdout.toString()), restore_exit: r.code},
      exitCode: r.code === 11 ? 11 : 1,
    })
  }
}

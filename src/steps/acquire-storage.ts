import {hostname, userInfo} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {type Epoch, nodeEpochPath, readEpochOn, storageEpochPath, writeEpochOn} from '../facts/epoch.js'
import {HaError} from '../core/errors.js'
import {storageDriver} from '../drivers/storage/index.js'
import {lockName, stateDirName} from '../facts/state-dir.js'
import {attachmentSeen, deviceSeen, fileSeen, prefetch, readText, somethingAt, storageAtBoot, storageAttached, storageIsTheDevice} from './observe.js'
import type {Action, Step, StepContext} from './step.js'

type Ctx = Pick<StepContext, 'config' | 'from' | 'to'>

const attach = (ctx: Ctx): Action | undefined => {
  const {commands} = storageDriver(ctx.config)
  return commands ? {argv: commands.attach, on: ctx.to} : undefined
}

/** What the post- and precondition look at on the node taking over, read in one exec. */
const facts = (ctx: Ctx) => {
  const storage = storageDriver(ctx.config)
  return [
    ...(storage.tracked ? [attachmentSeen(ctx.config)] : []),
    ...(storage.boot ? [fileSeen(storage.boot.path)] : []),
    ...(storage.device ? [deviceSeen(ctx.config, storage.device)] : []),
  ]
}

/** The storage's line in the boot configuration of the node taking over (mount: its fstab). */
const boot = (ctx: Ctx): Action[] => {
  const entry = storageDriver(ctx.config).boot
  return entry ? [{edit: entry.path, on: ctx.to, what: entry.adding}] : []
}

const epochOnStorage = (ctx: Ctx): Action => ({edit: storageEpochPath(ctx.config), on: ctx.to, what: `epoch +1, active: ${ctx.to}`})
const epochOnNode = (ctx: Ctx, node: 'from' | 'to'): Action => ({edit: nodeEpochPath, on: ctx[node], what: `the same epoch, noted on ${ctx[node]}`})
/** The data directory's lock, on the storage: a fenced node's is stale (breakFencedLock). */
const lockFile = (ctx: Ctx) => join(ctx.config.data_dir, stateDirName, lockName)
/** Only when the active node was confirmed fenced, and only its lock: see breakFencedLock. */
const unlockFenced = (ctx: Ctx): Action => ({argv: ['ha', 'unlock', '--held-by', ctx.from, '--yes', '--json', '--node', ctx.to], on: ctx.to})

/**
 * The storage comes to the node taking over; it must be the expected filesystem (its epoch file
 * says what ha saw when the failover started), and the epoch is bumped on it before anything
 * starts on the new node. Storage with a boot entry (mount: fstab) also goes into the new node's.
 */
export const acquireStorage: Step = {
  actions: (ctx) => [
    ...(attach(ctx) ? [attach(ctx)!] : []),
    ...boot(ctx),
    ...(storageDriver(ctx.config).tracked ? [unlockFenced(ctx)] : []),
    epochOnStorage(ctx),
    epochOnNode(ctx, 'to'),
    epochOnNode(ctx, 'from'),
  ],
  id: 'acquire-storage',
  on: (ctx) => ctx.to,
  async post(ctx) {
    const to = await ctx.host(ctx.to)
    await prefetch(to, facts(ctx))
    const storage = storageDriver(ctx.config)
    if (storage.tracked && !(await storageAttached(to, ctx.config))) return false
    if (storage.boot && !(await storageAtBoot(to, storage.boot))) return false
    const epoch = await readEpochOn(to, storageEpochPath(ctx.config)).catch(() => undefined)
    return epoch?.run_id === ctx.runId && epoch.active === ctx.to
  },
  async pre(ctx) {
    if (ctx.data('confirm-fenced').confirmed || !storageDriver(ctx.config).tracked) return undefined
    if (await storageAttached(await ctx.host(ctx.from), ctx.config)) return `the storage is still attached to ${ctx.from}`
    return undefined
  },
  async run(ctx) {
    const to = await ctx.host(ctx.to)
    const storage = storageDriver(ctx.config)
    if (storage.operatorMoves) {
      ctx.progress(`attach the storage to ${ctx.to} now; waiting until it is there`)
      const deadline = Date.now() + ctx.config.failover.reboot_timeout * 1000
      while (!(await storageAttached(to, ctx.config))) {
        if (Date.now() > deadline) throw new HaError(`the storage is not attached to ${ctx.to}`, {actions: ['attach it, then ha failover --resume'], exitCode: 5})
        await sleep(1000)
      }
    } else if (storage.commands && !(await storageAttached(to, ctx.config))) {
      await ctx.act(attach(ctx)!, {timeoutMs: 5 * 60_000})
    }

    const fencedLock = Boolean(ctx.data('confirm-fenced').confirmed) && storage.tracked
    await prefetch(to, [...facts(ctx), ...(fencedLock ? [fileSeen(lockFile(ctx))] : [])])
    const device = await storageIsTheDevice(to, ctx.config)
    if (!device.ok) throw new HaError(`${ctx.to}: ${ctx.config.data_dir} is mounted from ${device.source}, not from storage.device ${ctx.config.storage.device}`, {actions: ['unmount it and check storage.device']})
    if (storage.boot) {
      const text = await readText(to, storage.boot.path)
      const withLine = storage.boot.added(text)
      if (withLine !== text) await ctx.act(boot(ctx)[0], {content: withLine})
    }

    // The storage's epoch must be the one seen when this run started: anything else is another
    // filesystem, or another failover ran meanwhile.
    const seen = Number(ctx.data('run').epoch_before ?? 0)
    const current = await readEpochOn(to, storageEpochPath(ctx.config))
    if (current?.run_id !== ctx.runId && (current?.epoch ?? 0) !== seen) {
      // This run can never go on from here: the way out is named (resume would fail the same way).
      throw new HaError(`the storage attached to ${ctx.to} holds epoch ${current?.epoch ?? 'none'}${current ? ` (run ${current.run_id}, active ${current.active})` : ''}, but this failover started at epoch ${seen}: not the storage ha expected, or another failover ran; nothing was started`, {
        actions: [
          `if another failover ran (ha status names the active node): this run cannot go on; end it with ha failover --forget ${ctx.runId}`,
          'if this is not the storage ha expects: look at the epoch file; ha writes it at each takeover, and the journal under /var/lib/ha/failover says which node took over last',
        ],
      })
    }

    if (fencedLock) await breakFencedLock(ctx)
    const next: Epoch = {
      active: ctx.to,
      at: new Date().toISOString(),
      by: `${userInfo().username}@${hostname()}`,
      epoch: current?.run_id === ctx.runId ? current.epoch : seen + 1,
      run_id: ctx.runId,
    }
    await ctx.act(epochOnStorage(ctx), {
      inProcess: () => writeEpochOn(to, storageEpochPath(ctx.config), next),
    })
    await ctx.act(epochOnNode(ctx, 'to'), {inProcess: () => writeEpochOn(to, nodeEpochPath, next)})
    if (!ctx.data('confirm-fenced').confirmed) {
      await ctx.act(epochOnNode(ctx, 'from'), {inProcess: async () => writeEpochOn(await ctx.host(ctx.from), nodeEpochPath, next)})
    }

    await ctx.remember({epoch: next.epoch})
  },
  title: 'Attach the storage to the node taking over, check it, bump the epoch',
}

interface UnlockEnvelope {
  error?: {message?: string}
  result?: {broken?: boolean; holder?: null | {command?: string; host?: string; node?: string; pid?: number; since?: string}; holder_status?: null | {summary?: string}; journal?: null | string; left?: null | string}
}

/**
 * Seed 001's dead primary often dies mid-backup: its lock stays on the storage and every ha
 * command on the node taking over (the restore first) would refuse it. Once that node is
 * confirmed fenced its lock is stale: `ha unlock --held-by` on the node taking over breaks it —
 * ha unlock's own checks, its unlock.log line — and only if the fenced node holds it. A lock of
 * the node taking over itself is left alone, and one whose holder still runs (the "fenced" node
 * answers and runs it) is refused by ha unlock: then the node is not fenced, and nothing goes on.
 * Nothing at the lock's path (the batch that read the storage's facts says so): nothing to break,
 * and no ha started on the node for it. Anything there, lock or not, is ha unlock's to judge.
 */
async function breakFencedLock(ctx: StepContext): Promise<void> {
  if (!(await somethingAt(await ctx.host(ctx.to), lockFile(ctx)))) return
  const r = await ctx.act(unlockFenced(ctx), {allow: [0, 1, 2, 11], timeoutMs: 60_000})
  let envelope: UnlockEnvelope = {}
  try {
    envelope = JSON.parse(r.stdout.toString('utf8')) as UnlockEnvelope
  } catch {}

  const result = envelope.result
  if (r.code !== 0 || !result) {
    const why = envelope.error?.message ?? (r.stderr.toString().trim().split('\n').at(-1) || `exit ${r.code}`)
    const alive = r.code === 11 && /still running|refuses/.test(why)
    throw new HaError(`the lock on the storage (attached to ${ctx.to}) could not be checked or broken: ${why}`, {
      actions: alive
        ? [`${ctx.from} was confirmed fenced, yet its ha still runs: make sure ${ctx.from} is really off, then ha failover --resume`]
        : [`look at it on ${ctx.to}: ha unlock --node ${ctx.to}`, 'then ha failover --resume'],
      exitCode: r.code === 11 ? 11 : 1,
    })
  }

  if (result.left) {
    ctx.progress(`the lock on the storage is not ${ctx.from}'s, so it is not ha failover's to break: ${result.left}`)
    return
  }

  if (!result.broken) return
  const h = result.holder
  const fenced = ctx.fenced()
  const holder = h ? `"${h.command}" of ${h.host}${h.node ? ` (node ${h.node})` : ''}, pid ${h.pid}, since ${h.since}` : 'an unreadable lock'
  const why = `${ctx.from} is confirmed fenced (${fenced?.how ?? 'confirmed'} by ${fenced?.by ?? 'the operator'}): the lock it left on the storage is stale`
  ctx.progress(`${why}; broke it: ${holder} (recorded in ${result.journal} on ${ctx.to})`)
  await ctx.remember({
    lock_broken: {
      at: new Date().toISOString(),
      by: `${userInfo().username}@${hostname()}`,
      holder: h ?? null,
      holder_status: result.holder_status?.summary ?? null,
      on: ctx.to,
      unlock_log: result.journal ?? null,
      why,
    },
  })
}

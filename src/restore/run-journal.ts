import {constants, lstatSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {join, posix, relative} from 'node:path'

import {describeSystemError, ExitCode, HaError} from '../core/errors.js'
import {jsonTextChunks} from '../core/json-pieces.js'
import {writeFileAtomic} from '../fs/atomic.js'

/**
 * The journal of one restore run, `<data_dir>/.ha/undo/<run>/journal.json`: every change the run
 * makes to the host (written before the first one) and the phase the run is in. The phase is the
 * only thing `ha restore`, `--resume` and `--undo` decide from, so every instant of a run maps to
 * exactly one state and one piece of advice:
 *
 *   (no journal.json)  the run was stopped while preparing: nothing on the host changed; the
 *                      folder (copies of files it would replace) is removed by the next command
 *   prepared           files are being installed: some may be in place      → ha restore --undo
 *   installed          every file is in place, the re-own of the data
 *                      directory has not finished (maybe not started)      → ha restore --resume (or --undo)
 *   done               finished                                            → nothing (--undo puts it back)
 *   undoing            an undo was started: the host is partly back        → ha restore --undo
 *   undone             the host is as before the run
 *
 * Everything `installed` needs to go on (the saved accounts, the --map given, the re-own's
 * mapping) is written with the `prepared` journal, before the first change: a kill between two
 * phases can never leave a state whose advice does not work.
 *
 * The folder lives on the shared storage, which is untrusted ground: a journal is used only if ha
 * could have written it (see readJournal).
 */
export const journalFormat = 'ha-restore-undo/1'
export const journalName = 'journal.json'
export const reownJournalName = 'reown.journal'
export const savedAccounts = {group: 'accounts/group', passwd: 'accounts/passwd'} as const

export interface OldState {
  gid: number
  /** The previous link target, for a replaced symlink. */
  link_target?: string
  mode: number
  /** The copy of a replaced file, relative to the undo folder. */
  saved?: string
  type: 'directory' | 'file' | 'symlink'
  uid: number
}

export type JournalChange =
  | {old: OldState; op: 'replace'; path: string; target: string}
  | {old: OldState; op: 'update'; path: string; target: string}
  | {op: 'create'; path: string; target: string; type: 'directory' | 'file' | 'symlink'}
  | {op: 'mkdir'; path: string; target: string}

export const runStates = ['prepared', 'installed', 'done', 'undoing', 'undone'] as const
export type RunState = (typeof runStates)[number]

export interface RestoreJournal {
  backup_id: string
  changes: JournalChange[]
  created_at: string
  format: typeof journalFormat
  /** --map as given (saved name or old id → name or id here), so --resume plans the same re-own. */
  manual_maps: {groups: Array<[string, number | string]>; users: Array<[string, number | string]>}
  /** The re-own engine's own journal, relative to the undo folder. */
  reown_journal: typeof reownJournalName
  /** The id pairs the re-own changes; its journal must say the same, or it is not this run's. */
  reown_maps: {groups: Array<[number, number]>; users: Array<[number, number]>}
  root: string
  run_id: string
  /** The saved passwd/group the re-own maps by, copied here before the first change. */
  saved_accounts: typeof savedAccounts
  state: RunState
  /** While undoing: the state the undo started from. */
  undoing_from?: RunState
}

export async function writeJournal(undoDir: string, journal: RestoreJournal): Promise<void> {
  // In pieces (the same bytes): a journal lists every change, some 30 MB for 200,000 files.
  await writeFileAtomic(join(undoDir, journalName), jsonTextChunks(journal, 1), 0o600)
}

/** What a reader of a journal must know to tell ha's own journal from a planted one. */
export interface JournalExpectation {
  /** May this run have installed (or made) that host path? Built from this node's own config. */
  allowed: (hostPath: string) => boolean
  root: string
  /** <data_dir>/.ha: nothing in it is ever a restore target. */
  stateDir: string
}

const where = 'ha writes its undo journals itself (root-owned, 0600, in a 0700 folder)'

/**
 * ha's own paths on the shared storage must be what ha makes: not a symlink, the expected type,
 * owned by the user ha runs as, not writable by group or others. Anything else may have been
 * planted by whoever can write the data directory, and following it as root would let them steer
 * what an undo writes.
 */
export function assertOurs(path: string, type: 'directory' | 'file'): void {
  let st
  try {
    st = lstatSync(path)
  } catch (error) {
    throw new HaError(`cannot use ${path}: ${describeSystemError(error)}`, {actions: [where]})
  }

  const problem = st.isSymbolicLink()
    ? 'is a symlink'
    : type === 'directory' && !st.isDirectory()
      ? 'is not a directory'
      : type === 'file' && !st.isFile()
        ? 'is not a regular file'
        : st.uid !== (process.geteuid?.() ?? 0)
          ? `is owned by uid ${st.uid}, not by ${process.geteuid?.() ?? 0}`
          : (st.mode & 0o022) === 0
            ? undefined
            : `is writable by ${['', 'others', 'its group', 'its group and others'][((st.mode & 0o020) >> 3) | ((st.mode & 0o002) >> 1)]} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`
  if (problem) {
    throw new HaError(`refusing ${path}: it ${problem}, so ha did not write it as it is; nothing was changed`, {
      actions: [`find out who changed it; if ha did not write it, move it out of the way (${where})`],
      details: {path, problem},
    })
  }
}

/**
 * Reads a run's journal, trusting nothing in it: the folders and the file must be ha's own
 * (assertOurs), the JSON well-formed, and every change must name a path under this node's root
 * that this node's restore could have installed, outside ha's own folder, with the target the
 * path gives. Any defect refuses the whole journal: half-trusting a planted one is how an undo
 * becomes a write anywhere.
 */
export async function readJournal(undoDir: string, expect: JournalExpectation): Promise<RestoreJournal> {
  const path = join(undoDir, journalName)
  assertOurs(join(undoDir, '..'), 'directory')
  assertOurs(undoDir, 'directory')
  assertOurs(path, 'file')
  let value: unknown
  try {
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    try {
      value = JSON.parse(await handle.readFile('utf8'))
    } finally {
      await handle.close()
    }
  } catch (error) {
    throw new HaError(`cannot read the undo journal ${path}: ${describeSystemError(error)}; nothing was changed`, {
      actions: ['the undo folder is damaged; compare the files it lists with their saved copies by hand'],
    })
  }

  const problem = journalProblem(value, undoDir, expect)
  if (problem) {
    throw new HaError(`refusing the undo journal ${path}: ${problem}; nothing was changed`, {
      actions: [`ha did not write this journal as it is; if no restore of yours left it, move ${undoDir} out of the way`],
      details: {journal: path, problem},
    })
  }

  return value as RestoreJournal
}

const isId = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) < 2 ** 32
const isText = (s: unknown) => typeof s === 'string' && s.length > 0 && s.length <= 4096 && !/[\0\n\r]/.test(s)
const isPairs = (v: unknown) =>
  Array.isArray(v) && v.every((p) => Array.isArray(p) && p.length === 2 && isId(p[0]) && isId(p[1]) && p[0] !== 0 && p[1] !== 0)
const isManual = (v: unknown) =>
  Array.isArray(v) && v.every((p) => Array.isArray(p) && p.length === 2 && isText(p[0]) && (isText(p[1]) || isId(p[1])))

function journalProblem(value: unknown, undoDir: string, expect: JournalExpectation): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'it is not a JSON object'
  const j = value as Record<string, unknown>
  if (j.format !== journalFormat) return `its format is ${JSON.stringify(j.format)}, not ${journalFormat}`
  const runId = undoDir.split('/').at(-1)
  if (j.run_id !== runId) return `it names run ${JSON.stringify(j.run_id)} but lies in the folder of run ${runId}`
  if (j.root !== expect.root) return `it was written for root ${JSON.stringify(j.root)}, this node's root is ${expect.root}`
  if (!runStates.includes(j.state as RunState)) return `its state ${JSON.stringify(j.state)} is not one ha writes`
  if (j.undoing_from !== undefined && !runStates.includes(j.undoing_from as RunState)) return 'its undoing_from is not a state'
  if (!isText(j.backup_id) || typeof j.created_at !== 'string') return 'it lacks backup_id or created_at'
  if (j.reown_journal !== reownJournalName) return `its re-own journal must be ${reownJournalName}`
  const sa = j.saved_accounts as Record<string, unknown> | undefined
  if (sa?.passwd !== savedAccounts.passwd || sa?.group !== savedAccounts.group) return 'its saved accounts are not the fixed names ha uses'
  const mm = j.manual_maps as Record<string, unknown> | undefined
  if (!isManual(mm?.users) || !isManual(mm?.groups)) return 'its manual_maps are malformed'
  const rm = j.reown_maps as Record<string, unknown> | undefined
  if (!isPairs(rm?.users) || !isPairs(rm?.groups)) return 'its reown_maps are malformed or map id 0 (ha never re-owns to or from root)'
  if (!Array.isArray(j.changes) || j.changes.length > 1_000_000) return 'its changes are not a list'
  const seen = new Set<string>()
  for (const [i, c] of (j.changes as unknown[]).entries()) {
    const problem = changeProblem(c, expect)
    if (problem) return `change ${i + 1}: ${problem}`
    const p = (c as {path: string}).path
    if (seen.has(p)) return `change ${i + 1}: ${p} is listed twice`
    seen.add(p)
  }

  return undefined
}

function changeProblem(value: unknown, expect: JournalExpectation): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object'
  const c = value as Record<string, unknown>
  const path = c.path
  if (!isText(path) || !(path as string).startsWith('/') || posix.normalize(path as string) !== path || (path as string).split('/').includes('..')) {
    return `path ${JSON.stringify(path)} is not a clean absolute path`
  }

  const p = path as string
  const target = p === '/' ? expect.root : expect.root === '/' ? p : join(expect.root, p)
  if (c.target !== target) return `${p}: its target ${JSON.stringify(c.target)} is not ${target} (this node's root plus the path)`
  const inState = relative(expect.stateDir, target)
  if (inState === '' || (!inState.startsWith('..') && !inState.startsWith('/'))) return `${p} lies inside ha's own folder ${expect.stateDir}`
  switch (c.op) {
    case 'mkdir': {
      // Undoing a mkdir only removes the directory when it is empty: harmless wherever it is.
      return undefined
    }

    case 'create': {
      if (!['directory', 'file', 'symlink'].includes(c.type as string)) return `${p}: unknown type ${JSON.stringify(c.type)}`
      break
    }

    case 'replace':
    case 'update': {
      const old = c.old as Record<string, unknown> | undefined
      if (!old || !isId(old.uid) || !isId(old.gid) || !Number.isSafeInteger(old.mode) || (old.mode as number) < 0 || (old.mode as number) > 0o7777) {
        return `${p}: its old owner or mode is malformed`
      }

      if (!['directory', 'file', 'symlink'].includes(old.type as string)) return `${p}: unknown old type ${JSON.stringify(old.type)}`
      if (c.op === 'replace' && old.type === 'file' && !(typeof old.saved === 'string' && /^saved\/[1-9]\d{0,8}$/.test(old.saved))) {
        return `${p}: its saved copy ${JSON.stringify(old.saved)} is not a name ha gives (saved/<n>)`
      }

      if (c.op === 'replace' && old.type === 'symlink' && !isText(old.link_target)) return `${p}: its old link target is malformed`
      if ((c.op === 'update') !== (old.type === 'directory')) return `${p}: ha updates directories in place and replaces only files and symlinks`
      break
    }

    default: {
      return `unknown operation ${JSON.stringify(c.op)}`
    }
  }

  if (!expect.allowed(p)) return `${p} is not a path this node's restore installs (not in its backup manifest and include)`
  return undefined
}

/** One state, one sentence about the host, one command that goes on from it. */
export function stateAdvice(journal: Pick<RestoreJournal, 'changes' | 'run_id' | 'state'>, dataDir: string): {actions: string[]; host: string; next: null | string} {
  const run = `restore run ${journal.run_id}`
  const n = journal.changes.length
  switch (journal.state) {
    case 'prepared': {
      return {
        actions: [`ha restore --undo puts the host back as it was before ${run}; then run ha restore again`],
        host: `${run} stopped while installing files: the host is half-restored (up to ${n} changes of it are in place)`,
        next: 'ha restore --undo',
      }
    }

    case 'installed': {
      return {
        actions: [`ha restore --resume finishes ${run} (the re-own of ${dataDir})`, `or ha restore --undo puts the host back as it was before it`],
        host: `${run} installed its files but did not finish re-owning ${dataDir}: the host has the archive's files, its data directory is partly re-owned`,
        next: 'ha restore --resume',
      }
    }

    case 'undoing': {
      return {
        actions: [`ha restore --undo finishes putting the host back as it was before ${run}`],
        host: `the undo of ${run} was stopped: the host is partly back to how it was before that run`,
        next: 'ha restore --undo',
      }
    }

    case 'done': {
      return {actions: [], host: `${run} finished`, next: null}
    }

    case 'undone': {
      return {actions: [], host: `${run} was undone: the host is as it was before it`, next: null}
    }
  }
}

/**
 * A command that stopped with the host between two states: exit 5, the state in words, the
 * changes the run made (as journalled), and the one command that goes on from here.
 */
export function stoppedMidway(journal: RestoreJournal, dataDir: string, why: string, cause?: unknown): HaError {
  const advice = stateAdvice(journal, dataDir)
  return new HaError(`${why}: ${advice.host}`, {
    actions: advice.actions,
    cause,
    details: {
      changes: journal.changes.map((c) => ({op: c.op, path: c.path})),
      next: advice.next,
      run_id: journal.run_id,
      state: journal.state,
    },
    exitCode: ExitCode.stoppedMidway,
  })
}

import {access, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {Config} from '../config/schema.js'
import {HaError} from '../errors.js'
import {takeLock} from '../lock.js'
import type {LocalNode} from '../nodes.js'
import {underRoot} from '../fs/under-root.js'
import {dataDirOn, openStateDir, openStateSubdir, stateDirOn} from '../state-dir.js'
import {readJournal, writeJournal} from './install.js'
import type {ReownResult} from './reown.js'
import {parseStrict, readAccounts} from './account-files.js'
import {undoRoot, unfinishedRun} from './undo.js'

/**
 * `ha restore --resume`: finishes a restore that was interrupted (Ctrl-C, a crash, a reboot)
 * after its files were installed: the re-own continues from its journal, or, when it had not
 * written one yet (so had changed nothing), is planned again from the saved accounts the run
 * kept in its undo folder. A run interrupted while installing files cannot be resumed without
 * its staging directory; --undo, then a new run, is the way back from there.
 */
export interface ResumeOptions {
  config: Config
  node: LocalNode
  onProgress?: (message: string) => void
  signal?: AbortSignal
}

export interface ResumeRestoreResult {
  backup_id: string
  node: string
  reown: ReownResult
  run_id: string
  undo_dir: string
}

export async function resumeRestore(options: ResumeOptions): Promise<ResumeRestoreResult> {
  const {config, node} = options
  const progress = options.onProgress ?? (() => {})
  const lock = await takeLock(config, node, 'ha restore --resume')
  try {
    // .ha and .ha/undo are checked (a symlink, a foreign owner or group/other write is refused) before a journal is read.
    const state = openStateDir(node.config, config, {create: false})
    if (state) {
      openStateSubdir(state, 'undo', {create: false})?.close()
      state.close()
    }

    const unfinished = await unfinishedRun(undoRoot(stateDirOn(node.config, config)))
    if (!unfinished) throw new HaError('no unfinished restore to resume', {actions: ['nothing to do']})
    const journal = await readJournal(unfinished.undo_dir)
    if (unfinished.state !== 'installed' || !journal.reown_journal || !journal.saved_accounts) {
      throw new HaError(`restore run ${unfinished.run} stopped while installing files; it cannot be resumed`, {
        actions: ['ha restore --undo puts the host back as it was before it; then run ha restore again'],
      })
    }

    const reownJournal = join(unfinished.undo_dir, journal.reown_journal)
    const engine = await import('./reown.js')
    const onProgress = (p: {changes: number; entries: number}) => progress(`re-own: ${p.entries} entries looked at, ${p.changes} changed`)
    let reown: ReownResult
    if (await access(reownJournal).then(() => true, () => false)) {
      progress(`resuming the re-own from ${reownJournal}`)
      reown = await engine.resumeReown(reownJournal, {onProgress, signal: options.signal})
    } else {
      // Stopped before the re-own wrote its journal, i.e. before it changed anything: plan it
      // again from the saved accounts kept in the undo folder, and run it with that journal.
      const root = node.config.root
      const dir = unfinished.undo_dir
      const plan = engine.planOwnerMaps({
        manual: {groups: new Map(journal.manual_maps?.groups ?? []), users: new Map(journal.manual_maps?.users ?? [])},
        savedGroup: parseStrict(await readFile(join(dir, journal.saved_accounts.group), 'utf8'), 'group', `saved /etc/group in ${dir}`),
        savedPasswd: parseStrict(await readFile(join(dir, journal.saved_accounts.passwd), 'utf8'), 'passwd', `saved /etc/passwd in ${dir}`),
        targetGroup: await readAccounts(underRoot(root, '/etc/group'), 'group', underRoot(root, '/etc/group')),
        targetPasswd: await readAccounts(underRoot(root, '/etc/passwd'), 'passwd', underRoot(root, '/etc/passwd')),
      })
      engine.assertPlanComplete(plan)
      progress(`re-owning ${dataDirOn(node.config, config)} by name (the interrupted run had not started it)`)
      reown = await engine.applyReown(dataDirOn(node.config, config), plan, {journalPath: reownJournal, onProgress, signal: options.signal})
    }

    journal.state = 'done'
    await writeJournal(unfinished.undo_dir, journal)
    return {backup_id: journal.backup_id, node: node.name, reown, run_id: unfinished.run, undo_dir: unfinished.undo_dir}
  } finally {
    await lock.release()
  }
}

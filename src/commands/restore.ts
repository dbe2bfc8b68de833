import {HaCommand, type HaFlags} from '../cli/base-command.js'
import {yesFlag} from '../cli/flags.js'
import {Flags} from '../cli/oclif.js'
import type {Config} from '../config/schema.js'
import {ConfigError, ExitCode, HaError} from '../core/errors.js'
import type {LocalNode} from '../facts/local-node.js'
import {nextRestoreCommand, pinRestoreHints, type RestoreContext, restoreCommand} from '../restore/next-command.js'

/** At a terminal, files listed per kind of change before "… and N more" (JSON and pipes get all). */
const terminalListCap = 20

type Flags = HaFlags<typeof Restore>

export default class Restore extends HaCommand<typeof Restore> {
  static needsRoot = 'it installs files owned by other users and re-owns the data directory'

  static description = `harestore: puts the state saved by ha backup in place on this node and re-owns the data directory by user and group *name* (the secondary's uids differ from the primary's). Nothing changes until the whole run is known: the archive (newest verified, or --backup) is checked member by member while it is extracted into a fresh staging directory, every owner name is resolved on this host, and every saved name without a match here is listed. Files replaced are kept in <data_dir>/.ha/undo/<run>/ so --undo puts the host back. Saved passwd/group are never installed (they are the names the re-own maps by); identity files (hostname, hosts, ssh host keys, network) only with --takeover; /etc/hostid and /etc/machine-id never.

Refused under cluster.manager: pacemaker, where the cluster starts and stops the service: only ha's resource agent restores there (it sets HA_OCF=1), or an admin while the cluster is in maintenance mode; --dry-run still works (docs/cluster-guided.md).`

  static examples = [
    {command: '<%= config.bin %> restore --dry-run', description: 'Show what would be installed and how many entries each owner mapping changes'},
    {command: '<%= config.bin %> restore --takeover', description: 'Restore on the secondary taking over the primary\'s identity'},
    {command: '<%= config.bin %> restore --map user:oracle=oracle2 --map group:dba=dba', description: 'Map saved names that have no account of the same name here'},
    {command: '<%= config.bin %> restore --undo', description: 'Put the host back as it was before the last restore'},
    {command: '<%= config.bin %> restore --resume', description: 'Finish a restore interrupted while re-owning the data directory'},
    {command: '<%= config.bin %> restore --yes --json', description: 'From a runbook: no question asked (without a terminal and without --yes, exit 4)'},
  ]

  static flags = {
    backup: Flags.string({description: 'the archive to restore (id or unique prefix; default: the newest verified one)'}),
    'dry-run': Flags.boolean({description: 'print the plan (files to install, entries each owner mapping changes) and change nothing'}),
    'ignore-version': Flags.boolean({description: 'restore even though the archive is from another product version (loud warning)'}),
    map: Flags.string({
      description: 'resolve a saved owner by hand: user:OLD=NEW, group:OLD=NEW, or OLD=NEW for both (OLD: saved name or old id; NEW: name or id here)',
      multiple: true,
    }),
    node: Flags.string({description: 'which configured node this machine is (default: the one whose hostname matches)', options: ['primary', 'secondary']}),
    resume: Flags.boolean({description: 'finish a restore interrupted during its re-own (from its journal)'}),
    takeover: Flags.boolean({description: 'also install identity files (hostname, hosts, ssh host keys, network configuration)'}),
    undo: Flags.boolean({description: 'put the host back as it was before the newest restore that is not undone yet'}),
    yes: yesFlag,
  }

  static summary = 'Put the saved state in place and re-own the data directory by name (harestore)'

  async run(): Promise<void> {
    const {flags} = await this.parse(Restore)
    const {config, path} = await this.loadConfig(flags)
    // Under Pacemaker only its resource agent restores (HA_OCF=1), or an admin while the cluster
    // is in maintenance mode; a dry run changes nothing.
    if (!flags['dry-run'] && config.cluster.manager === 'pacemaker') {
      const {refuseRestoreUnderPacemaker} = await import('../cluster/refuse.js')
      await refuseRestoreUnderPacemaker(config, path, (m) => this.reporter.warn(m), this.abort.signal)
    }
    const {localNode} = await import('../facts/local-node.js')
    const node = localNode(config, flags.node, path)
    // Checked here rather than with oclif's `exclusive`, whose usage line would read as if
    // --backup, --map and --takeover excluded each other.
    const runFlags = (['backup', 'dry-run', 'ignore-version', 'map', 'takeover'] as const).filter((f) => flags[f] !== undefined && flags[f] !== false)
    for (const mode of ['undo', 'resume'] as const) {
      const others = [...runFlags, ...(mode === 'undo' && flags.resume ? ['resume'] : [])]
      if (flags[mode] && others.length > 0) {
        throw new ConfigError(`--${mode} cannot be combined with ${others.map((f) => `--${f}`).join(', ')}`, {actions: [`run ha restore --${mode} alone`]})
      }
    }

    // The follow-ups this run names (--undo, --resume, the dry run's real run) carry its --node and --config.
    const context: RestoreContext = {bin: this.config.bin, config: flags.config === undefined ? undefined : path, node: flags.node}
    try {
      if (flags.undo) await this.undo(config, node, path, flags)
      else if (flags.resume) await this.resume(config, node, context)
      else await this.restore(config, node, path, flags, context)
    } catch (error) {
      if (error instanceof HaError) throw withPinnedHints(error, context)
      throw error
    }
  }

  private progress(): (m: string) => void {
    return (m: string) => this.reporter.info(m)
  }

  /** Without a terminal and without --yes a command that would ask exits 4 before anything is read. */
  private async mustAsk(flags: Flags, action: string): Promise<boolean> {
    const {canPrompt, ConfirmationNeededError} = await import('../cli/prompt.js')
    const asking = !flags.yes && !flags['dry-run'] && !flags.resume
    if (asking && !canPrompt()) throw new ConfirmationNeededError(`ha restore (${action})`, '--yes')
    return asking
  }

  private async undo(config: Config, node: LocalNode, path: string, flags: Flags): Promise<void> {
    const action = `undo the last restore on ${node.name}`
    if (await this.mustAsk(flags, action)) {
      // Severe: the node's name is typed.
      const {describeUndo} = await import('../restore/confirmation.js')
      const {confirmTyped} = await import('../cli/prompt.js')
      process.stderr.write(`${describeUndo(node, path)}\n`)
      await confirmTyped({action, expected: node.name, yes: false})
    }

    const {undoRestore} = await import('../restore/undo.js')
    const {renderUndo} = await import('../restore/render.js')
    const result = await undoRestore({config, node, onProgress: this.progress(), signal: this.abort.signal})
    for (const kept of result.files.kept) this.reporter.warn(`left in place: ${kept}`)
    this.finish(result, ExitCode.ok, renderUndo)
  }

  private async resume(config: Config, node: LocalNode, context: RestoreContext): Promise<void> {
    const {resumeRestore} = await import('../restore/resume.js')
    const {renderResume} = await import('../restore/render.js')
    const result = await resumeRestore({config, node, onProgress: this.progress(), signal: this.abort.signal})
    const undo = restoreCommand(context, ['--undo'])
    this.finish(result, ExitCode.ok, (r, c) => renderResume(r, c, {undo}))
  }

  private async restore(config: Config, node: LocalNode, path: string, flags: Flags, context: RestoreContext): Promise<void> {
    const action = `restore${flags.takeover ? ' with --takeover' : ''} onto ${node.name}`
    const asking = await this.mustAsk(flags, action)
    const {countOf} = await import('../cli/output/progress.js')
    const line = this.reporter.progress()
    const {parseMapFlags} = await import('../restore/map-flag.js')
    const {runRestore} = await import('../restore/restore.js')
    const {renderRestore} = await import('../restore/render.js')
    const options = {
      backup: flags.backup,
      config,
      dryRun: flags['dry-run'],
      ignoreVersion: flags['ignore-version'],
      maps: parseMapFlags(flags.map ?? []),
      node,
      onEntries: (done: number, total: number) => (done < total ? line.update(`extracting into staging: ${countOf(done, total, 'entries')}`) : line.done()),
      onProgress: this.progress(),
      onWarning: (m: string) => this.reporter.warn(m),
      signal: this.abort.signal,
      takeover: flags.takeover,
    }
    // An unfinished earlier run makes the real run refuse at once (exit 5, with the host's state and
    // the one command that goes on): nobody is asked to confirm a run that will not start.
    const {runContext, unfinishedRun} = await import('../restore/runs.js')
    if (asking && !(await unfinishedRun(await runContext(config, node)))) {
      // The dry run is the plan shown; the real run is pinned to its backup and does not repeat its warnings.
      const warned = new Set<string>()
      const plan = await runRestore({...options, dryRun: true, identityPreview: true, onWarning: (m) => warned.add(m) && this.reporter.warn(m)})
      const {describeRestore} = await import('../restore/confirmation.js')
      const {confirmAction, confirmTyped} = await import('../cli/prompt.js')
      process.stderr.write(`${pinRestoreHints(describeRestore(plan, node, path, terminalListCap), context)}\n`)
      const asked = {action: `${action} from backup ${plan.backup.id}`, yes: false}
      // --takeover is severe: the node's name is typed.
      await (flags.takeover ? confirmTyped({...asked, expected: node.name}) : confirmAction(asked))
      Object.assign(options, {backup: plan.backup.id, onWarning: (m: string) => warned.has(m) || this.reporter.warn(m)})
    }

    const result = await runRestore(options)
    // The dry run ends with the real run, pinned to the backup it showed.
    const next = result.dry_run
      ? nextRestoreCommand({...context, backupId: result.backup.id, ignoreVersion: flags['ignore-version'], maps: flags.map, takeover: flags.takeover})
      : undefined
    const cap = this.reporter.mode === 'human' ? terminalListCap : undefined
    const undo = restoreCommand(context, ['--undo'])
    // Under --json too: a runbook takes the pinned command from the dry run's envelope.
    this.finish(next === undefined ? result : {...result, next_command: next}, ExitCode.ok, (r, c) => renderRestore(r, c, {cap, next, undo}))
  }
}

/** The same error, its message and actions naming --undo / --resume with this run's --node and --config. */
function withPinnedHints(error: HaError, context: RestoreContext): HaError {
  const pinned = Object.create(Object.getPrototypeOf(error) as object) as HaError
  Object.assign(pinned, error, {actions: error.actions.map((a) => pinRestoreHints(a, context)), message: pinRestoreHints(error.message, context), stack: error.stack})
  return pinned
}

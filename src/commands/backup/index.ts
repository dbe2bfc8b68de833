import {HaCommand} from '../../cli/base-command.js'
import {nodeFlag} from '../../cli/flags.js'
import {Flags} from '../../cli/oclif.js'
import {ExitCode} from '../../core/errors.js'

export default class Backup extends HaCommand<typeof Backup> {
  static needsRoot = "it reads the controller's state as root and writes the archive into the data directory"

  static description = `Saves the controller state that lives outside the data directory (accounts, hostname, hosts, ssh host keys, network configuration, the version file, cron and service units, and backup.include) into one gzip'd tar under <data_dir>/${'.ha/backups'}, so it travels with the shared storage. The archive gets its final name only after it was fsync'd and re-read against its manifest; only then are archives beyond backup.keep pruned. Exit 3 when optional files were missing (recorded in the manifest).`

  static examples = [
    {command: '<%= config.bin %> backup', description: 'Back up this node (the one whose hostname matches the config)'},
    {command: '0 * * * * root /usr/local/bin/ha backup --quiet --if-attached', description: 'Hourly from /etc/cron.d on both nodes: silent on success and on the standby. Cron\'s PATH is /usr/bin:/bin, so give ha\'s full path (command -v ha); ha schedule install writes this line for you'},
    {command: '<%= config.bin %> backup --node primary --json', description: 'Name the node; print the result as JSON'},
  ]

  static flags = {
    'if-attached': Flags.boolean({description: 'when the shared storage is not attached to this node (the standby), do nothing and exit 0: for the same cron line on both nodes'}),
    node: nodeFlag,
  }

  static summary = 'Save the controller state outside the data directory into it (habackup)'

  async run(): Promise<void> {
    const {flags} = await this.parse(Backup)
    const {config, path} = await this.loadConfig(flags)
    const {localNode} = await import('../../facts/local-node.js')
    const {runBackup} = await import('../../backup/backup.js')
    const {renderBackup} = await import('../../backup/render.js')
    const {bytesOf} = await import('../../cli/output/progress.js')
    const node = localNode(config, flags.node, path)
    const progress = this.reporter.progress()
    const onBytes = (stage: string, done: number, total: number) => progress.update(`${stage} the archive: ${bytesOf(done, total)}`)
    const result = await runBackup({config, ifAttached: flags['if-attached'], node, onBytes, onProgress: (m) => this.reporter.info(m), signal: this.abort.signal})
    if (result.status === 'not_attached') {
      this.finish(result, ExitCode.ok, (r) => `nothing to do: ${r.reason} (--if-attached)`)
      return
    }

    for (const missing of result.missing) this.reporter.warn(`optional ${missing.path} is missing; recorded in the manifest`)
    for (const skipped of result.skipped) this.reporter.warn(`not saved: ${skipped}`)
    for (const id of result.unreadable_archives) this.reporter.warn(`archive ${id} cannot be read; left in place (ha backup verify ${id})`)
    const status = result.status === 'partial' ? ExitCode.problems : ExitCode.ok
    this.finish(result, status, renderBackup, `backup ${result.id} is partial: missing ${result.missing.map((m) => m.path).join(', ')}`)
  }
}

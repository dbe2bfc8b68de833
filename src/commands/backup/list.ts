
import {HaCommand} from '../../cli/base-command.js'
import {nodeFlag} from '../../cli/flags.js'
import {ExitCode} from '../../core/errors.js'

export default class BackupList extends HaCommand<typeof BackupList> {
  static needsRoot = "the backups are kept in the data directory's .ha, which only root may open"

  static description = 'Lists the archives in <data_dir>/<backup.dir>, newest first by their own sequence number: id, creation time, source host, product version, size, and whether ha restore would accept the archive now (each archive is re-read whole; names that are not regular files are skipped with a warning). Exit 3 when an archive is FAILED or unreadable (the listing itself was made; exit 1 is for a listing that could not be).'

  static examples = ['<%= config.bin %> backup list', '<%= config.bin %> backup list --json']

  static flags = {
    node: nodeFlag,
  }

  static summary = 'List backup archives, newest first'

  async run(): Promise<void> {
    const {flags} = await this.parse(BackupList)
    const {config, path} = await this.loadConfig(flags)
    const {localNode} = await import('../../facts/local-node.js')
    const {listBackupsReport} = await import('../../backup/list.js')
    const {renderList} = await import('../../backup/render.js')
    const node = localNode(config, flags.node, path)
    const result = await listBackupsReport(config, node, (m) => this.reporter.warn(m))
    // 3, "found problems", as ha check: the rows are all there, and some archive restore would refuse.
    const failed = result.backups.filter((b) => !b.verified)
    this.finish(result, failed.length > 0 ? ExitCode.problems : ExitCode.ok, renderList, failed.length > 0 ? `${failed.length} of ${result.backups.length} archives would be refused by ha restore: ${failed.map((b) => b.id).join(', ')}` : undefined)
  }
}

import type {VerifyProgress} from '../../backup/verify.js'
import {HaCommand} from '../../cli/base-command.js'
import {nodeFlag} from '../../cli/flags.js'
import {Args} from '../../cli/oclif.js'
import {ExitCode} from '../../core/errors.js'

export default class BackupVerify extends HaCommand<typeof BackupVerify> {
  static needsRoot = "the backups are kept in the data directory's .ha, which only root may open"

  static args = {
    id: Args.string({description: 'archive id, a unique prefix of one, or "latest"; default: every archive'}),
  }

  static description = 'Re-reads an archive and re-hashes every member against its manifest. A flipped byte, a truncated file, a missing member, or an entry this node\'s backup manifest would never save is reported by name and the command exits 1: the same judgement ha backup list, ha check and ha restore make. The outcome is recorded beside the archive.'

  static examples = ['<%= config.bin %> backup verify', '<%= config.bin %> backup verify 20261122T031500Z-0007', '<%= config.bin %> backup verify latest --json']

  static flags = {
    node: nodeFlag,
  }

  static summary = 'Check archives against their manifests'

  protected firstInterruptNotice = 'verify is read-only; press Ctrl-C again to stop'

  async run(): Promise<void> {
    const {args, flags} = await this.parse(BackupVerify)
    const {config, path} = await this.loadConfig(flags)
    const {localNode} = await import('../../facts/local-node.js')
    const {verifyBackups} = await import('../../backup/verify.js')
    const {firstProblem, renderVerify} = await import('../../backup/render.js')
    const {bytesOf} = await import('../../cli/output/progress.js')
    const node = localNode(config, flags.node, path)
    const line = this.reporter.progress()
    const onProgress = (p: VerifyProgress) => line.update(`verifying ${p.id}${p.count > 1 ? ` (${p.index + 1} of ${p.count})` : ''}: ${bytesOf(p.read, p.size)} read`)
    const result = await verifyBackups(config, node, args.id, {onProgress, onWarning: (m) => this.reporter.warn(m), signal: this.abort.signal})
    const failed = result.archives.filter((a) => !a.ok)
    this.finish(result, failed.length > 0 ? ExitCode.failed : ExitCode.ok, renderVerify, failed.length > 0 ? failed.map((a) => `${a.id}: ${firstProblem(a.id, a.problems)}`).join('; ') : undefined)
  }
}

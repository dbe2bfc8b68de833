import {Args} from '@oclif/core'

import {HaCommand} from '../../base-command.js'
import {nodeFlag} from '../../flags.js'
import {ExitCode} from '../../errors.js'

export default class BackupVerify extends HaCommand<typeof BackupVerify> {
  static args = {
    id: Args.string({description: 'archive id, a unique prefix of one, or "latest"; default: every archive'}),
  }

  static description = 'Re-reads an archive and re-hashes every member against its manifest. A flipped byte, a truncated file, a missing member, or an entry this node\'s backup manifest would never save is reported by name and the command exits 1: the same judgement ha backup list, ha check and ha restore make. The outcome is recorded beside the archive.'

  static examples = ['<%= config.bin %> backup verify', '<%= config.bin %> backup verify 20261122T031500Z-0007', '<%= config.bin %> backup verify latest --json']

  static flags = {
    node: nodeFlag,
  }

  static summary = 'Check archives against their manifests'

  async run(): Promise<void> {
    const {args, flags} = await this.parse(BackupVerify)
    const {config, path} = await this.loadConfig(flags)
    const {localNode} = await import('../../nodes.js')
    const {verifyBackups} = await import('../../backup/verify.js')
    const {renderVerify} = await import('../../backup/render.js')
    const node = localNode(config, flags.node, path)
    const result = await verifyBackups(config, node, args.id, (m) => this.reporter.warn(m))
    const failed = result.archives.filter((a) => !a.ok)
    this.finish(result, failed.length > 0 ? ExitCode.failed : ExitCode.ok, renderVerify, failed.length > 0 ? `${failed.map((a) => `${a.id}: ${a.problems[0]}`).join('; ')}` : undefined)
  }
}

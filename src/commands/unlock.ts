import {HaCommand} from '../cli/base-command.js'
import {nodeFlag, yesFlag} from '../cli/flags.js'
import {Flags} from '../cli/oclif.js'
import type {NodeName} from '../config/schema.js'
import {ExitCode} from '../core/errors.js'

export default class Unlock extends HaCommand<typeof Unlock> {
  static needsRoot = "the lock is in the data directory's .ha, which only root may change"

  static description =
    'Removes the lock of the data directory when nothing holds it any more — typically the lock a primary that died mid-backup left on the shared storage. It refuses while the holder is alive: a running process on this host, or the other node answering (over ssh) that its pid still runs it. Every break is appended to <data_dir>/.ha/unlock.log.'

  static examples = ['<%= config.bin %> unlock', '<%= config.bin %> unlock --yes --json', '<%= config.bin %> unlock --held-by primary --yes   # fenced primary only']

  static flags = {
    'held-by': Flags.string({
      description: 'break the lock only when NODE holds it (ha failover passes the node it confirmed fenced); a lock of anyone else is left alone and said so, exit 0',
      options: ['primary', 'secondary'],
    }),
    node: nodeFlag,
    yes: yesFlag,
  }

  static summary = 'Break a stale lock (journalled; refuses while its holder still runs)'

  async run(): Promise<void> {
    const {flags} = await this.parse(Unlock)
    const {config, path} = await this.loadConfig(flags)
    const {localNode} = await import('../facts/local-node.js')
    const {unlockDataDir} = await import('../lock/break.js')
    const {renderUnlock} = await import('../lock/render.js')
    const node = localNode(config, flags.node, path)
    const result = await unlockDataDir({
      config,
      async confirm(action) {
        const {confirmAction} = await import('../cli/prompt.js')
        await confirmAction({action, yes: flags.yes})
      },
      heldBy: flags['held-by'] as NodeName | undefined,
      node,
      onProgress: (m) => this.reporter.say(m),
    })
    this.finish(result, ExitCode.ok, renderUnlock)
  }
}

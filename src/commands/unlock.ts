import {Flags} from '@oclif/core'

import {HaCommand} from '../base-command.js'
import {ExitCode, HaError} from '../errors.js'
import {nodeFlag} from '../flags.js'

export default class Unlock extends HaCommand<typeof Unlock> {
  static description =
    'Removes the lock of the data directory when nothing holds it any more — typically the lock a primary that died mid-backup left on the shared storage. It refuses while the holder is alive: a running process on this host, or the other node answering (over ssh) that its pid still runs it. Every break is appended to <data_dir>/.ha/unlock.log.'

  static examples = ['<%= config.bin %> unlock', '<%= config.bin %> unlock --yes --json']

  static flags = {
    node: nodeFlag,
    yes: Flags.boolean({description: 'break the lock without asking (for scripts); the checks still run'}),
  }

  static summary = 'Break a stale lock (journalled; refuses while its holder still runs)'

  async run(): Promise<void> {
    const {flags} = await this.parse(Unlock)
    const {config, path} = await this.loadConfig(flags)
    const {localNode} = await import('../nodes.js')
    const {unlockDataDir} = await import('../lock-break.js')
    const {renderUnlock} = await import('../lock-render.js')
    const node = localNode(config, flags.node, path)
    const result = await unlockDataDir({
      config,
      // Until the shared prompt seam (src/prompt.ts) asks at a terminal, --yes is the confirmation.
      async confirm(action) {
        if (flags.yes) return
        throw new HaError(`${action}: this needs a confirmation; nothing was changed`, {
          actions: ['run it again with --yes once you are sure'],
          exitCode: ExitCode.needsConfirmation,
        })
      },
      node,
      onProgress: (m) => this.reporter.info(m),
    })
    this.finish(result, ExitCode.ok, renderUnlock)
  }
}

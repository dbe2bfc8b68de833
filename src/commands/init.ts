import {HaCommand} from '../cli/base-command.js'
import {Flags} from '../cli/oclif.js'
import {configPathFrom} from '../config/path.js'
import {initFlags} from '../init/flags.js'
import type {InitAnswers, InitResult} from '../init/init.js'

export default class Init extends HaCommand<typeof Init> {
  static description = `Writes the configuration: proposes what it detects on this machine (hostname, addresses, the data directory, the version file, the ssh key and known_hosts, the storage mounted at the data directory), reads both nodes' ssh host keys and tests the connections, writes the file (validated as ha config check validates it, atomically, mode 0644) and ends with ha check. Every question has a flag; --yes takes the proposals, so \`ha init --yes --peer ADDRESS\` works in a script.

When the ssh test fails (a node that does not answer, a login or host key refused), the answers are kept: the wizard says what failed, asks the rest, and writes them as a draft beside the configuration (CONFIG.draft, which no command reads), then exits with the failure's code and the one command line, every answer a flag, that finishes once ssh works. --no-ssh-test writes the configuration itself without the test, and says what that leaves unverified: the nodes' host keys (not read, not added to known_hosts, so with host_key_policy strict ha refuses to connect until they are there), the login to either node, the peer's hostname and mounts (not read, so not proposed), and ha check (not run: it needs ssh). ha config check judges the file as any other.

Host keys are never trusted silently: this machine's own key is recorded only when it is one of its /etc/ssh/ssh_host_*_key.pub files; the peer's key, when known_hosts does not have it, is shown and must be confirmed at the terminal, or given as --peer-host-key SHA256:... (from ssh-keygen -lf on the peer's console) in a script; without it --yes stops with exit 4 and names the fingerprint. Where the host keys are signed by a certificate authority, --cert-authority CA.pub records the CA's @cert-authority line for both nodes instead (only after both logins through the system ssh accepted their certificates) and writes ssh.client: openssh. The written config uses host_key_policy: strict. An existing configuration is replaced only when confirmed, or with --force. Without a terminal and without --yes: exit 4.`

  static examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --yes --peer 198.18.0.3 --peer-host-key SHA256:...',
    '<%= config.bin %> init --yes --peer 198.18.0.3 --cert-authority /etc/ssh/host_ca.pub',
    '<%= config.bin %> init --config /etc/ha/ha.yaml.new --node secondary',
  ]

  static flags = {
    ...initFlags,
    force: Flags.boolean({description: 'replace an existing configuration without asking'}),
    'no-check': Flags.boolean({description: 'do not run ha check after writing the configuration'}),
    'no-ssh-test': Flags.boolean({
      description: "write the configuration without the ssh test: the host keys are not read nor added to known_hosts, no login is tried, ha check is not run",
      exclusive: ['peer-host-key'],
    }),
    yes: Flags.boolean({char: 'y', description: 'ask nothing: take what was detected for every question no flag answers'}),
  }

  static summary = 'Write the configuration: detect, ask, test ssh, then ha check'

  async run(): Promise<InitResult> {
    const {flags} = await this.parse(Init)
    const {runInit} = await import('../init/init.js')
    const {canPrompt} = await import('../cli/prompt.js')
    const {config: _c, force, json, 'no-check': noCheck, 'no-color': _n, 'no-ssh-test': noSshTest, quiet: _q, yes, ...answers} = flags
    const {exitCode, result} = await runInit({
      answers: answers as InitAnswers,
      check: !noCheck,
      configPath: configPathFrom(flags.config),
      force,
      interactive: !json && canPrompt(),
      onInfo: (m) => this.reporter.info(m),
      onWarning: (m) => this.reporter.warn(m),
      signal: this.abort.signal,
      sshTest: !noSshTest,
      yes,
    })
    const {renderInit} = await import('../init/render.js')
    return this.finish(result, exitCode, renderInit)
  }
}

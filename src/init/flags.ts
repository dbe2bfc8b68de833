import {Flags} from '../cli/oclif.js'
import {exampleConfigPath} from '../config/load.js'
import {type FieldCheck, fieldChecks, type FieldName, fingerprintProblem} from './fields.js'

/** A flag that answers one of ha init's questions, refused at parse time by the schema's own rule (exit 2, nothing written). */
function answerFlag(name: FieldName, description: string, check: FieldCheck = fieldChecks[name]) {
  return Flags.string({
    description,
    async parse(value) {
      const problem = check(value)
      if (problem) throw new Error(`${problem} (the same rule as in the config file; ${exampleConfigPath} documents every key)`)
      return value
    },
  })
}

/** Optional answers take '' for "none" (no service IP, no init script, ssh-agent instead of a key file). */
function optionalAnswerFlag(name: FieldName, description: string) {
  return answerFlag(name, `${description} ('' for none)`, (value) => (value === '' ? undefined : fieldChecks[name](value)))
}

export const initFlags = {
  address: answerFlag('address', "this machine's address, as the peer and ha reach it over ssh (default: its first global IPv4 address)"),
  'boot-config': answerFlag('boot-config', 'how both nodes configure their addresses at boot: ifupdown, networkmanager, ifcfg or netplan (default: the one whose files configure the service interface here)'),
  'backup-dir': answerFlag('backup-dir', 'where archives go, relative to the data directory and inside it (default .ha/backups)'),
  'data-dir': answerFlag('data-dir', 'the data directory on the shared storage (default: /var/opt/sun/xvm when it exists)'),
  hostname: answerFlag('hostname', "this machine's hostname (default: the hostname it has)"),
  'identity-file': optionalAnswerFlag('identity-file', 'the private key ha logs in with (default: ~/.ssh/ha_ed25519, id_ed25519, id_ecdsa or id_rsa, whichever exists)'),
  interface: answerFlag('interface', 'the interface the service IP goes on (default: the one with an address in its subnet)'),
  'known-hosts': answerFlag('known-hosts', 'the known_hosts file host keys are checked against (default ~/.ssh/known_hosts)'),
  node: Flags.string({description: 'which node this machine is (default primary)', options: ['primary', 'secondary']}),
  peer: answerFlag('peer', "the other node's address (ssh); needed with --yes"),
  'peer-host-key': Flags.string({
    description: "the other node's ssh host key fingerprint as you verified it (ssh-keygen -lf on its console); needed with --yes when known_hosts does not have it",
    async parse(value) {
      const problem = fingerprintProblem(value)
      if (problem) throw new Error(problem)
      return value
    },
  }),
  'cert-authority': Flags.string({
    description: "the public key of the CA that signs both nodes' ssh host keys: recorded as one @cert-authority line instead of their plain keys; the nodes then go through the system ssh (ssh.client: openssh), which checks the certificates",
    exclusive: ['peer-host-key'],
  }),
  'peer-hostname': answerFlag('peer-hostname', "the other node's hostname (default: what it answers over ssh)"),
  'service-ip': optionalAnswerFlag('service-ip', 'the service IP clients use, IPv4 with prefix, e.g. 198.18.1.10/24'),
  services: optionalAnswerFlag('services', "the init script that starts, stops and reports the product's services (default /etc/init.d/xvm when it exists)"),
  'ssh-port': answerFlag('ssh-port', 'the ssh port on both nodes (default 22)'),
  'ssh-user': answerFlag('ssh-user', 'the ssh user on both nodes (default root)'),
  storage: Flags.string({description: 'how the shared storage moves (default: mount when the data directory is mounted on either node, else manual)', options: ['mount', 'zfs', 'manual', 'none']}),
  'storage-device': answerFlag('storage-device', 'the block device of the shared storage (default: the one mounted at the data directory)'),
  'version-file': answerFlag('version-file', "the product's version file (default /n1gc-setup/.version.properties)"),
}

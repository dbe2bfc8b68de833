import {lstat, mkdir} from 'node:fs/promises'
import {dirname, resolve} from 'node:path'

import {stringify} from 'yaml'

import type {CheckReport} from '../check/types.js'
import {exampleConfigPath, parseConfig} from '../config/load.js'
import {type Config, type NodeName} from '../config/schema.js'
import {ExitCode, type ExitCodeValue, HaError, InterruptedError, UsageError} from '../core/errors.js'
import {writeFileAtomic} from '../fs/atomic.js'
import type {SshSettings} from '../hosts/ssh-host.js'
import {askText, confirmAction} from '../cli/prompt.js'
import {type Detected, detect, mountAt} from './detect.js'
import {type FieldCheck, fieldChecks, type FieldName} from './fields.js'
import {type PresentedKey, presentedHostKey} from '../hosts/host-key-scan.js'
import {ownHostKeyFingerprints, recordHostKey, refuseBadKey} from './host-key.js'

/**
 * `ha init`: from nothing to a configuration that `ha config check` accepts and `ha check` has
 * run against. Every question has a flag of the same name (checked by the same schema rule),
 * so the wizard at a terminal and `ha init --yes --peer ...` in a script are one path: a flag
 * answers its question, --yes takes what was detected, and only what is left is asked.
 */
export type InitAnswers = Partial<Record<FieldName, string>> & {node?: NodeName; 'peer-host-key'?: string}

export interface InitOptions {
  answers: InitAnswers
  configPath: string
  /** Replace an existing configuration without asking. */
  force: boolean
  /** Questions can be shown (a terminal on stdin and stderr, and not --json). */
  interactive: boolean
  /** What is happening, for a person (stderr; nothing under --json). */
  onInfo: (message: string) => void
  onWarning: (message: string) => void
  signal?: AbortSignal
  /** Run `ha check` at the end (the default). */
  check: boolean
  /** Take what was detected for every question a flag did not answer. */
  yes: boolean
}

export interface HostKeyTrust {
  fingerprint: string
  host: string
  /** How it came to be trusted: already in known_hosts, this machine's own key, or confirmed by the operator. */
  how: 'confirmed at the terminal' | 'given as --peer-host-key' | 'in known_hosts' | "this machine's own key"
  node: NodeName
}

export interface InitResult {
  check: CheckReport | null
  /** The example installed with ha: every key documented, for what init does not ask. */
  example: string
  host_keys: HostKeyTrust[]
  node: NodeName
  path: string
  replaced: boolean
}

/**
 * A decision init never takes on its own (trusting a host key, replacing a configuration) was not
 * given by its flag, and cannot be asked (--yes, or no terminal): exit 4, naming the flag.
 */
export class InitConfirmationNeededError extends HaError {
  constructor(what: string, flag: string, first?: string) {
    super(`${what}: ha init does not decide that by itself (--yes takes only proposals, and there is nobody to ask); nothing was written`, {
      actions: [...(first ? [first] : []), `run it again with ${flag}`],
      exitCode: ExitCode.needsConfirmation,
    })
  }
}

/** Without a terminal and without --yes nothing can be asked: exit 4, naming the flags. */
export class InitNeedsAnswersError extends HaError {
  constructor() {
    super('ha init asks questions, and there is no terminal to ask on (stdin or stderr is not a terminal, or --json); nothing was written', {
      actions: ['run it again with --yes and --peer <address> to take what ha detects (each question has a flag: ha init --help)', 'or run it at a terminal to be asked'],
      exitCode: ExitCode.needsConfirmation,
    })
  }
}

export async function runInit(options: InitOptions): Promise<{exitCode: ExitCodeValue; result: InitResult}> {
  const recorded: string[] = []
  try {
    return await initSteps(options, recorded)
  } catch (error) {
    if (!(error instanceof InterruptedError)) throw error
    // Say exactly what was changed before the interruption: host keys the operator accepted stay.
    const kept = recorded.length > 0 ? `; kept in known_hosts: ${recorded.join(', ')}` : ''
    throw new InterruptedError(`interrupted: the configuration ${resolve(options.configPath)} was not written${kept}`)
  }
}

async function initSteps(options: InitOptions, recorded: string[]): Promise<{exitCode: ExitCodeValue; result: InitResult}> {
  const {answers, interactive, yes} = options
  if (!interactive && !yes) throw new InitNeedsAnswersError()
  const path = resolve(options.configPath)
  const replaced = await refuseToReplace(path, options)

  /** One question: its flag answers it; --yes takes the proposal; else it is asked. */
  const ask = async (name: FieldName | 'node', message: string, proposal: string | undefined, optional = false): Promise<string | undefined> => {
    const check: FieldCheck = name === 'node' ? (v) => (v === 'primary' || v === 'secondary' ? undefined : 'must be primary or secondary') : fieldChecks[name]
    const given = answers[name]
    if (given !== undefined) return given === '' && optional ? undefined : given
    if (yes) {
      if (proposal !== undefined || optional) return proposal
      const what = message.replace(/\?$/, '')
      throw new UsageError(`ha init --yes: --${name} is needed (${what.charAt(0).toLowerCase()}${what.slice(1)}): nothing on this machine proposes it; nothing was written`, {
        actions: [`pass --${name} <value>`, 'or run ha init at a terminal to be asked', `${exampleConfigPath} documents every key`],
      })
    }

    const value = await askText({
      default: proposal,
      flag: `--${name}`,
      message: optional ? `${message} (empty: none)` : message,
      validate: (v) => (v === '' ? (optional ? undefined : 'an answer is needed') : check(v)),
    })
    return value === '' ? undefined : value
  }

  const detected = await detect()
  const node = (await ask('node', 'Which node is this machine, primary or secondary?', 'primary')) as NodeName
  const peerNode: NodeName = node === 'primary' ? 'secondary' : 'primary'
  const hostname = (await ask('hostname', `This machine's hostname (as ${node})?`, detected.hostname))!
  const address = (await ask('address', `The address the peer and ha reach this machine at over ssh?`, detected.addresses[0]?.address))!
  const peer = (await ask('peer', `The ${peerNode}'s address (ssh)?`, undefined))!
  const user = (await ask('ssh-user', 'The ssh user on both nodes?', 'root'))!
  const port = Number(await ask('ssh-port', 'The ssh port on both nodes?', '22'))
  const identityFile = await ask('identity-file', 'The private key ha logs in with?', detected.identity_file, true)
  const knownHosts = (await ask('known-hosts', 'The known_hosts file ha checks host keys against?', detected.known_hosts))!
  const ssh = (host: string): SshSettings => ({
    command_timeout: 60,
    connect_timeout: 10,
    host,
    host_key_policy: 'strict',
    ...(identityFile ? {identity_file: identityFile} : {}),
    keepalive_interval: 5,
    known_hosts: knownHosts,
    port,
    user,
  })

  options.onInfo(`reading the ssh host keys of ${address} (this machine) and ${peer} (${peerNode})…`)
  // Both keys are decided before either is recorded, so a refusal of the peer's leaves known_hosts as it was.
  const decided = [await trustOwnKey(node, address, port, knownHosts), await trustPeerKey(peerNode, peer, port, knownHosts, options)]
  const hostKeys: HostKeyTrust[] = []
  for (const {key, trust} of decided) {
    if (key) {
      await mkdir(dirname(knownHosts), {mode: 0o700, recursive: true})
      await recordHostKey(knownHosts, trust.host, port, key)
      recorded.push(`${trust.host} ${trust.fingerprint}`)
      options.onInfo(`added ${trust.how === "this machine's own key" ? "this machine's own" : `the ${trust.node}'s`} host key ${trust.fingerprint} for ${trust.host} to ${knownHosts}`)
    }

    hostKeys.push(trust)
  }

  options.onInfo(`testing the ssh connections as ${user} (strict host key checking)…`)
  const {connectSsh} = await import('../hosts/ssh-connect.js')
  const connect = (name: NodeName, host: string) => connectSsh(name, '/', ssh(host), {onWarning: options.onWarning, signal: options.signal})
  const self = await connect(node, address)
  await self.close()
  const peerHost = await connect(peerNode, peer)
  let peerName: string | undefined
  let peerMounts: Detected['mounts'] = []
  try {
    peerName = (await peerHost.run(['hostname'])).stdout.toString('utf8').trim() || undefined
    const mounts = await peerHost.run(['cat', '/proc/self/mounts'])
    peerMounts = mounts.stdout
      .toString('utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f.length >= 3)
      .map(([device, target, fstype]) => ({device, fstype, target}))
  } finally {
    await peerHost.close()
  }

  const peerHostname = (await ask('peer-hostname', `The ${peerNode}'s hostname?`, peerName))!
  const dataDir = (await ask('data-dir', 'The data directory on the shared storage?', detected.data_dirs[0] ?? '/var/opt/sun/xvm'))!
  const versionFile = (await ask('version-file', "The product's version file?", detected.version_file ?? '/n1gc-setup/.version.properties'))!
  // The storage is attached to one node at a time: whichever has data_dir mounted tells its device.
  const mount = mountAt(detected, dataDir) ?? mountAt({...detected, mounts: peerMounts}, dataDir)
  const kind = (await ask('storage', 'How the shared storage moves: mount, zfs, manual or none?', mount ? (mount.fstype === 'zfs' ? 'zfs' : 'mount') : 'manual'))!
  const device = kind === 'mount' ? await ask('storage-device', 'The block device of the shared storage?', mount?.device, true) : undefined
  const serviceIp = await ask('service-ip', 'The service IP clients use, as address/prefix?', undefined, true)
  const iface = serviceIp ? (await ask('interface', 'The interface the service IP goes on?', interfaceFor(serviceIp, address, detected)))! : undefined
  const backupDir = (await ask('backup-dir', 'Where archives go, inside the data directory?', '.ha/backups'))!
  const script = await ask('services', "The init script that starts, stops and reports the product's services?", detected.services_script, true)

  const nodeBlock = (name: string, host: string) => ({hostname: name, root: '/', ssh: {host, port, user, ...(identityFile ? {identity_file: identityFile} : {}), known_hosts: knownHosts, host_key_policy: 'strict'}})
  const nodes = node === 'primary' ? {primary: nodeBlock(hostname, address), secondary: nodeBlock(peerHostname, peer)} : {primary: nodeBlock(peerHostname, peer), secondary: nodeBlock(hostname, address)}
  const document = {
    data_dir: dataDir,
    version_file: versionFile,
    nodes,
    service_ips: serviceIp ? [{address: serviceIp, interface: iface}] : [],
    storage: {kind, ...(device ? {device} : {}), ...(kind === 'mount' && mount?.fstype ? {fstype: mount.fstype} : {})},
    ...(script ? {services: {start: [script, 'start'], stop: [script, 'stop'], status: [script, 'status']}} : {}),
    backup: {dir: backupDir},
  }
  const text = [
    `# ha configuration, written by \`ha init\` on ${hostname} (${node}). Install the same file on both nodes.`,
    `# Every key, with its default: ${exampleConfigPath}`,
    `# Check it offline: ha config check --config ${path}`,
    stringify(document),
  ].join('\n')
  // The same parse and validation as every command's: a file init writes always loads.
  const config: Config = parseConfig(text, path)
  await mkdir(dirname(path), {mode: 0o755, recursive: true})
  // No secret in it (a key's path, not the key), and ha runs from cron as root: root-writable, world-readable.
  await writeFileAtomic(path, text, 0o644)
  options.onInfo(`wrote ${path}`)

  const result: InitResult = {check: null, example: exampleConfigPath, host_keys: hostKeys, node, path, replaced}
  if (!options.check) return {exitCode: ExitCode.ok, result}
  options.onInfo('running ha check…')
  const {runCheck} = await import('../check/check.js')
  const {exitCode, report} = await runCheck(config, {onWarning: options.onWarning, signal: options.signal})
  return {exitCode, result: {...result, check: report}}
}

async function refuseToReplace(path: string, options: InitOptions): Promise<boolean> {
  const existing = await lstat(path).catch(() => undefined)
  if (!existing) return false
  if (!existing.isFile()) {
    throw new HaError(`${path} exists and is not a regular file (a link or a folder); ha init does not write through it; nothing was written`, {
      actions: [`look at ${path}, move it away, and run ha init again`],
    })
  }

  if (options.force) return true
  if (options.yes || !options.interactive) throw new InitConfirmationNeededError(`${path} exists; replacing it needs a confirmation`, '--force to replace it')
  await confirmAction({action: `replace the existing configuration ${path}`, flag: '--force', yes: false})
  return true
}

/** A trusted key, and the key to record when known_hosts does not have it yet. */
interface Decided {
  key?: PresentedKey
  trust: HostKeyTrust
}

async function trustOwnKey(node: NodeName, host: string, port: number, knownHosts: string): Promise<Decided> {
  const key = await presentedHostKey(host, port, knownHosts, 10_000)
  refuseBadKey(`this machine (${node})`, host, port, knownHosts, key)
  if (key.verdict.kind === 'known') return {trust: {fingerprint: key.fingerprint, host, how: 'in known_hosts', node}}
  if (!(await ownHostKeyFingerprints()).includes(key.fingerprint)) {
    throw new HaError(`${host}, given as this machine's address, presents the host key ${key.fingerprint}, which is not one of this machine's (/etc/ssh/ssh_host_*_key.pub); refused, nothing was written`, {
      actions: ['pass --address with an address of this machine (ip -br addr shows them)'],
    })
  }

  return {key, trust: {fingerprint: key.fingerprint, host, how: "this machine's own key", node}}
}

async function trustPeerKey(node: NodeName, host: string, port: number, knownHosts: string, options: InitOptions): Promise<Decided> {
  const key = await presentedHostKey(host, port, knownHosts, 10_000)
  refuseBadKey(`the ${node}`, host, port, knownHosts, key)
  const expected = options.answers['peer-host-key']
  if (key.verdict.kind === 'known') {
    if (expected !== undefined && expected !== key.fingerprint) throw mismatch(node, host, key.fingerprint, expected)
    return {trust: {fingerprint: key.fingerprint, host, how: 'in known_hosts', node}}
  }

  let how: HostKeyTrust['how']
  if (expected !== undefined) {
    if (expected !== key.fingerprint) throw mismatch(node, host, key.fingerprint, expected)
    how = 'given as --peer-host-key'
  } else if (options.yes || !options.interactive) {
    // Never trust on first use in a script: the operator names the key they verified.
    throw new InitConfirmationNeededError(
      `the ${node} (${host}) presents the host key ${key.fingerprint}, which ${knownHosts} does not know; trusting it needs a confirmation`,
      `--peer-host-key ${key.fingerprint}`,
      `verify it on the ${node}'s console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`,
    )
  } else {
    options.onInfo(`The ${node} (${host}) presents the host key ${key.fingerprint}, which ${knownHosts} does not know.\nCompare it on the ${node}'s console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)
    await confirmAction({action: `trust ${key.fingerprint} as the ${node}'s host key and add it to ${knownHosts}`, flag: `--peer-host-key ${key.fingerprint}`, yes: false})
    how = 'confirmed at the terminal'
  }

  return {key, trust: {fingerprint: key.fingerprint, host, how, node}}
}

function mismatch(node: NodeName, host: string, presented: string, expected: string): HaError {
  return new HaError(`the ${node} (${host}) presents the host key ${presented}, not ${expected} given as --peer-host-key; refused, nothing was written`, {
    actions: [`verify the key on the ${node}'s console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); a different key there means someone may be in the middle`],
  })
}

/** The interface that holds an address in the service IP's subnet, else the one holding this machine's ssh address. */
function interfaceFor(serviceIp: string, address: string, detected: Detected): string | undefined {
  const [ip, prefix] = serviceIp.split('/')
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0)
  const mask = (bits: number) => (bits === 0 ? 0 : (0xff_ff_ff_ff << (32 - bits)) >>> 0)
  const same = detected.addresses.find((a) => ((toInt(a.address) & mask(Number(prefix))) >>> 0) === ((toInt(ip) & mask(Number(prefix))) >>> 0))
  return same?.interface ?? detected.addresses.find((a) => a.address === address)?.interface
}


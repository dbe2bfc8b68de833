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
import {bootConfigDrivers, detectBootConfig} from '../drivers/boot-config/index.js'
import {type CertAuthority, readCertAuthority} from './cert-authority.js'
import {type Detected, detect, mountAt} from './detect.js'
import {draftPathFor, finishCommand, keepAnswers, removeDraft, sameKind} from './draft.js'
import {type FieldCheck, fieldChecks, type FieldName} from './fields.js'
import {type HostKeyTrust, InitConfirmationNeededError, sshTest, type SshTestResult} from './ssh-test.js'

export {type HostKeyTrust, InitConfirmationNeededError} from './ssh-test.js'

/**
 * `ha init`: from nothing to a configuration that `ha config check` accepts and `ha check` has
 * run against. Every question has a flag of the same name (checked by the same schema rule),
 * so the wizard at a terminal and `ha init --yes --peer ...` in a script are one path: a flag
 * answers its question, --yes takes what was detected, and only what is left is asked.
 */
export type InitAnswers = Partial<Record<FieldName, string>> & {'cert-authority'?: string; node?: NodeName; 'peer-host-key'?: string}

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
  /** Run `ha check` at the end (the default; never without the ssh test). */
  check: boolean
  /** Read and trust the host keys and log in to both nodes before writing (the default; --no-ssh-test skips it). */
  sshTest: boolean
  /** Take what was detected for every question a flag did not answer. */
  yes: boolean
}

export interface InitResult {
  check: CheckReport | null
  /** The example installed with ha: every key documented, for what init does not ask. */
  example: string
  host_keys: HostKeyTrust[]
  node: NodeName
  path: string
  replaced: boolean
  /** skipped: --no-ssh-test; not_verified then says what that leaves unproven. */
  ssh_test: 'passed' | 'skipped'
  not_verified: string[]
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

/** The answers in the order asked, each under its flag's name: the draft's finish command is made of them. */
type Given = Array<[flag: string, value: string]>

type Ask = (name: FieldName | 'node', message: string, proposal: string | undefined, optional?: boolean) => Promise<string | undefined>

/** One question: its flag answers it; --yes takes the proposal; else it is asked. Every answer is noted in `given`. */
function asker(options: InitOptions, given: Given): Ask {
  const {answers, yes} = options
  const answer = async (name: FieldName | 'node', message: string, proposal: string | undefined, optional: boolean): Promise<string | undefined> => {
    const check: FieldCheck = name === 'node' ? (v) => (v === 'primary' || v === 'secondary' ? undefined : 'must be primary or secondary') : fieldChecks[name]
    const flagged = answers[name]
    if (flagged !== undefined) return flagged === '' && optional ? undefined : flagged
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

  return async (name, message, proposal, optional = false) => {
    const value = await answer(name, message, proposal, optional)
    given.push([name, value ?? ''])
    return value
  }
}

/** Which node this is and how ha reaches both: what the ssh test needs. */
interface SshAnswers {
  node: NodeName
  peerNode: NodeName
  hostname: string
  address: string
  peer: string
  user: string
  port: number
  identityFile?: string
  knownHosts: string
  /** --cert-authority: host certificates checked against it, through the system ssh. */
  certAuthority?: CertAuthority
}

async function askSsh(ask: Ask, detected: Detected): Promise<SshAnswers> {
  const node = (await ask('node', 'Which node is this machine, primary or secondary?', 'primary')) as NodeName
  const peerNode: NodeName = node === 'primary' ? 'secondary' : 'primary'
  const hostname = (await ask('hostname', `This machine's hostname (as ${node})?`, detected.hostname))!
  const address = (await ask('address', `The address the peer and ha reach this machine at over ssh?`, detected.addresses[0]?.address))!
  const peer = (await ask('peer', `The ${peerNode}'s address (ssh)?`, undefined))!
  const user = (await ask('ssh-user', 'The ssh user on both nodes?', 'root'))!
  const port = Number(await ask('ssh-port', 'The ssh port on both nodes?', '22'))
  const identityFile = await ask('identity-file', 'The private key ha logs in with?', detected.identity_file, true)
  const knownHosts = (await ask('known-hosts', 'The known_hosts file ha checks host keys against?', detected.known_hosts))!
  return {address, hostname, identityFile, knownHosts, node, peer, peerNode, port, user}
}

/** The ssh block both nodes get (strict: a host key is trusted by init, never on first use later). */
function sshSettings(a: SshAnswers, host: string): SshSettings {
  return {
    client: a.certAuthority ? 'openssh' : 'ssh2',
    command_timeout: 60,
    connect_timeout: 10,
    host,
    host_key_policy: 'strict',
    ...(a.identityFile ? {identity_file: a.identityFile} : {}),
    keepalive_interval: 5,
    known_hosts: a.knownHosts,
    port: a.port,
    user: a.user,
  }
}

/** The questions after the ssh test, and the document they make. The peer's hostname and mounts are proposals when the test read them. */
async function askRest(ask: Ask, detected: Detected, a: SshAnswers, tested: SshTestResult, warn: (message: string) => void): Promise<Record<string, unknown>> {
  const peerHostname = (await ask('peer-hostname', `The ${a.peerNode}'s hostname?`, tested.peerName))!
  const dataDir = (await ask('data-dir', 'The data directory on the shared storage?', detected.data_dirs[0] ?? '/var/opt/sun/xvm'))!
  const versionFile = (await ask('version-file', "The product's version file?", detected.version_file ?? '/n1gc-setup/.version.properties'))!
  // The storage is attached to one node at a time: whichever has data_dir mounted tells its device.
  const mount = mountAt(detected, dataDir) ?? mountAt({...detected, mounts: tested.peerMounts}, dataDir)
  const kind = (await ask('storage', 'How the shared storage moves: mount, zfs, manual or none?', mount ? (mount.fstype === 'zfs' ? 'zfs' : 'mount') : 'manual'))!
  const device = kind === 'mount' ? await ask('storage-device', 'The block device of the shared storage?', mount?.device, true) : undefined
  const serviceIp = await ask('service-ip', 'The service IP clients use, as address/prefix?', undefined, true)
  const iface = serviceIp ? (await ask('interface', 'The interface the service IP goes on?', interfaceFor(serviceIp, a.address, detected)))! : undefined
  const boot = (await ask('boot-config', 'How both nodes configure their addresses at boot: ifupdown, networkmanager, ifcfg or netplan?', proposeBootConfig(detected, tested, iface, warn)))!
  const backupDir = (await ask('backup-dir', 'Where archives go, inside the data directory?', '.ha/backups'))!
  const script = await ask('services', "The init script that starts, stops and reports the product's services?", detected.services_script, true)

  const {identityFile, knownHosts, port, user} = a
  const client = a.certAuthority ? {client: 'openssh'} : {}
  const nodeBlock = (name: string, host: string) => ({hostname: name, root: '/', ssh: {host, port, user, ...client, ...(identityFile ? {identity_file: identityFile} : {}), known_hosts: knownHosts, host_key_policy: 'strict'}})
  const here = nodeBlock(a.hostname, a.address)
  const there = nodeBlock(peerHostname, a.peer)
  return {
    data_dir: dataDir,
    version_file: versionFile,
    nodes: a.node === 'primary' ? {primary: here, secondary: there} : {primary: there, secondary: here},
    service_ips: serviceIp ? [{address: serviceIp, interface: iface}] : [],
    storage: {kind, ...(device ? {device} : {}), ...(kind === 'mount' && mount?.fstype ? {fstype: mount.fstype} : {})},
    boot_config: {kind: boot},
    ...(script ? {services: {start: [script, 'start'], stop: [script, 'stop'], status: [script, 'status']}} : {}),
    backup: {dir: backupDir},
  }
}

/** What --no-ssh-test leaves unverified: said in the result and in the file's header. */
export const notVerifiedWithoutSshTest = [
  "the nodes' ssh host keys (not read, not added to known_hosts: with host_key_policy strict, ha refuses to connect until they are there)",
  'the ssh login to either node (address, port, user, key)',
  "the peer's hostname and mounts (not read, so not proposed)",
  'ha check (it needs ssh; run it once both nodes answer)',
]

/**
 * The ssh test, unless skipped. A failure (a node that cannot be reached, a login or a host key
 * refused, a key nobody confirmed) does not end the wizard: it is said at once and returned, the
 * questions go on, and the answers are kept as a draft.
 */
async function trySshTest(options: InitOptions, a: SshAnswers, recorded: string[], path: string): Promise<{failure?: HaError; tested: SshTestResult}> {
  const none: SshTestResult = {hostKeys: [], peerMounts: []}
  if (!options.sshTest) return {tested: none}
  try {
    const tested = await sshTest({
      ...a,
      canAsk: options.interactive && !options.yes,
      onInfo: options.onInfo,
      onRecorded: (what) => recorded.push(what),
      onWarning: options.onWarning,
      certAuthority: a.certAuthority,
      peerHostKey: options.answers['peer-host-key'],
      signal: options.signal,
      ssh: (host) => sshSettings(a, host),
    })
    return {tested}
  } catch (error) {
    if (error instanceof InterruptedError || !(error instanceof HaError)) throw error
    options.onWarning(`the ssh test failed: ${error.message}\nha init asks the rest all the same, to keep your answers in ${draftPathFor(path)}; ${path} itself is written only once the ssh test passes`)
    return {failure: error, tested: none}
  }
}

async function initSteps(options: InitOptions, recorded: string[]): Promise<{exitCode: ExitCodeValue; result: InitResult}> {
  if (!options.interactive && !options.yes) throw new InitNeedsAnswersError()
  const path = resolve(options.configPath)
  const replaced = await refuseToReplace(path, options)
  const given: Given = []
  const ask = asker(options, given)
  const detected = await detect()
  const a = await askSsh(ask, detected)
  // Read (and refused when it is no CA key) before anything is tested or written.
  const ca = options.answers['cert-authority']
  if (ca !== undefined) {
    a.certAuthority = await readCertAuthority(ca)
    given.push(['cert-authority', ca])
  }

  const {failure, tested} = await trySshTest(options, a, recorded, path)
  let document: Record<string, unknown>
  try {
    document = await askRest(ask, detected, a, tested, options.onWarning)
  } catch (error) {
    // --yes with an answer only the ssh test could propose (the peer's hostname): no draft, and both said.
    if (!failure || error instanceof InterruptedError || !(error instanceof HaError)) throw error
    throw sameKind(failure, new HaError(`${failure.message}\nand no draft of your answers could be made: ${error.message}`, {actions: [...failure.actions, ...error.actions], exitCode: failure.exitCode}))
  }

  // --peer-host-key is compared with the key the peer presents: the run without the ssh test cannot take it.
  const untested = finishCommand(path, given, ['--no-ssh-test'])
  if (options.answers['peer-host-key'] !== undefined) given.push(['peer-host-key', options.answers['peer-host-key']])
  const finish = finishCommand(path, given, options.check ? [] : ['--no-check'])
  const header = failure
    ? [`# DRAFT of ${path}, kept by \`ha init\` on ${a.hostname} (${a.node}) because the ssh test failed. No command reads this file.`, `# When ssh works, finish with: ${finish.line}`]
    : [`# ha configuration, written by \`ha init\` on ${a.hostname} (${a.node}). Install the same file on both nodes.`, ...(options.sshTest ? [] : ['# Written with --no-ssh-test: host keys and logins were not verified; ha check will say.'])]
  const file = failure ? draftPathFor(path) : path
  const text = [...header, `# Every key, with its default: ${exampleConfigPath}`, `# Check it offline: ha config check --config ${file}`, stringify(document)].join('\n')
  // The same parse and validation as every command's: a file init writes always loads.
  const config: Config = parseConfig(text, file)
  if (failure) throw await keepAnswers(failure, path, text, finish, untested)
  await mkdir(dirname(path), {mode: 0o755, recursive: true})
  // No secret in it (a key's path, not the key), and ha runs from cron as root: root-writable, world-readable.
  await writeFileAtomic(path, text, 0o644)
  options.onInfo(`wrote ${path}`)
  const removed = await removeDraft(path)
  if (removed) options.onInfo(`removed ${removed}, the draft an earlier run kept (its answers are in ${path} now, as given this time)`)

  const notVerified = options.sshTest ? [] : notVerifiedWithoutSshTest
  const result: InitResult = {check: null, example: exampleConfigPath, host_keys: tested.hostKeys, node: a.node, not_verified: notVerified, path, replaced, ssh_test: options.sshTest ? 'passed' : 'skipped'}
  if (!options.check || !options.sshTest) return {exitCode: ExitCode.ok, result}
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
  if (options.yes || !options.interactive) throw new InitConfirmationNeededError(`${path} exists; replacing it needs a confirmation`, '--force to replace it', undefined, '; nothing was written')
  await confirmAction({action: `replace the existing configuration ${path}`, flag: '--force', yes: false})
  return true
}

/**
 * The system whose files configure the service interface on this machine (ifupdown when none
 * does); a peer whose files say otherwise is warned about, since the takeover installs one node's
 * network configuration on the other and both must read the same kind of file.
 */
function proposeBootConfig(detected: Detected, tested: SshTestResult, iface: string | undefined, warn: (message: string) => void): string {
  const ifaces = iface ? [iface] : []
  const here = detectBootConfig(bootConfigDrivers, detected.boot_files, ifaces)
  const proposal = here[0]?.kind ?? 'ifupdown'
  if (here.length > 1) warn(`this machine has files of ${here.map((f) => `${f.kind} (${f.files.join(', ')})`).join(' and ')}; proposing ${proposal}`)
  const peer = tested.peerBootFiles ? detectBootConfig(bootConfigDrivers, tested.peerBootFiles, ifaces)[0] : undefined
  if (peer && peer.kind !== proposal) warn(`the peer configures ${iface ?? 'its interfaces'} with ${peer.kind} (${peer.files.join(', ')}), this machine with ${proposal}: both nodes must use the same system (the takeover installs one node's network configuration on the other)`)
  return proposal
}

/** The interface that holds an address in the service IP's subnet, else the one holding this machine's ssh address. */
function interfaceFor(serviceIp: string, address: string, detected: Detected): string | undefined {
  const [ip, prefix] = serviceIp.split('/')
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0)
  const mask = (bits: number) => (bits === 0 ? 0 : (0xff_ff_ff_ff << (32 - bits)) >>> 0)
  const same = detected.addresses.find((a) => ((toInt(a.address) & mask(Number(prefix))) >>> 0) === ((toInt(ip) & mask(Number(prefix))) >>> 0))
  return same?.interface ?? detected.addresses.find((a) => a.address === address)?.interface
}


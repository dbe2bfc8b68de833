import {mkdir} from 'node:fs/promises'
import {dirname} from 'node:path'

import {confirmAction} from '../cli/prompt.js'
import type {NodeName} from '../config/schema.js'
import {ExitCode, HaError} from '../core/errors.js'
import {type PresentedKey, presentedHostKey} from '../hosts/host-key-scan.js'
import type {Host} from '../hosts/host.js'
import type {SshSettings} from '../hosts/ssh-host.js'
import {type CertAuthority, trustCertAuthority} from './cert-authority.js'
import {bootFilesOf, type Detected} from './detect.js'
import {ownHostKeyFingerprints, recordHostKey, refuseBadKey} from './host-key.js'

/**
 * ha init's ssh test: both nodes' host keys read and trusted (or refused), the ones known_hosts
 * lacks recorded, then a login to each as the config will log in, and the peer's hostname and
 * mounts read for the questions that follow. What it refuses or cannot reach is thrown; the
 * wizard keeps the answers given so far either way (a draft, see draft.ts).
 */
export interface HostKeyTrust {
  fingerprint: string
  host: string
  /** How it came to be trusted: already in known_hosts, this machine's own key, or confirmed by the operator. */
  how: 'certified by the --cert-authority key' | 'confirmed at the terminal' | 'given as --peer-host-key' | 'in known_hosts' | "this machine's own key"
  node: NodeName
}

/**
 * A decision init never takes on its own (trusting a host key, replacing a configuration) was not
 * given by its flag, and cannot be asked (--yes, or no terminal): exit 4, naming the flag.
 */
export class InitConfirmationNeededError extends HaError {
  constructor(what: string, flag: string, first?: string, end = '') {
    super(`${what}: ha init does not decide that by itself (--yes takes only proposals, and there is nobody to ask)${end}`, {
      actions: [...(first ? [first] : []), `run it again with ${flag}`],
      exitCode: ExitCode.needsConfirmation,
    })
  }
}

export interface SshTestInput {
  node: NodeName
  peerNode: NodeName
  address: string
  peer: string
  port: number
  knownHosts: string
  /** The settings the config will have, for a node's host. */
  ssh: (host: string) => SshSettings
  /** The fingerprint the operator verified (--peer-host-key). */
  peerHostKey?: string
  /** Both nodes' host certificates are checked against this CA (--cert-authority), through the system ssh. */
  certAuthority?: CertAuthority
  /** Ask at the terminal whether to trust an unknown peer key (else it needs --peer-host-key). */
  canAsk: boolean
  onInfo: (message: string) => void
  onWarning: (message: string) => void
  /** Each host key written to known_hosts, as it is written ("host SHA256:..."). */
  onRecorded: (what: string) => void
  signal?: AbortSignal
}

export interface SshTestResult {
  hostKeys: HostKeyTrust[]
  /** What the peer says its hostname is, and what it has mounted: proposals for the questions after. */
  peerName?: string
  peerMounts: Detected['mounts']
  /** The peer's boot configuration files (which system it uses), when the test read them. */
  peerBootFiles?: Detected['boot_files']
}

export async function sshTest(input: SshTestInput): Promise<SshTestResult> {
  if (input.certAuthority) return certifiedSshTest(input, input.certAuthority)
  const {knownHosts, node, peerNode, port} = input
  input.onInfo(`reading the ssh host keys of ${input.address} (this machine) and ${input.peer} (${peerNode})…`)
  // Both keys are decided before either is recorded, so a refusal of the peer's leaves known_hosts as it was.
  const decided = [await trustOwnKey(node, input.address, port, knownHosts), await trustPeerKey(peerNode, input.peer, input)]
  const hostKeys: HostKeyTrust[] = []
  for (const {key, trust} of decided) {
    if (key) {
      await mkdir(dirname(knownHosts), {mode: 0o700, recursive: true})
      await recordHostKey(knownHosts, trust.host, port, key)
      input.onRecorded(`${trust.host} ${trust.fingerprint}`)
      input.onInfo(`added ${trust.how === "this machine's own key" ? "this machine's own" : `the ${trust.node}'s`} host key ${trust.fingerprint} for ${trust.host} to ${knownHosts}`)
    }

    hostKeys.push(trust)
  }

  input.onInfo(`testing the ssh connections as ${input.ssh(input.peer).user} (strict host key checking)…`)
  const {connectSsh} = await import('../hosts/ssh-connect.js')
  const connect = (name: NodeName, host: string) => connectSsh(name, '/', input.ssh(host), {onWarning: input.onWarning, signal: input.signal})
  const self = await connect(node, input.address)
  await self.close()
  return {hostKeys, ...(await readPeer(await connect(peerNode, input.peer)))}
}

/** --cert-authority: both nodes logged in to through the system ssh, their certificates checked against the CA; then its line is recorded. */
async function certifiedSshTest(input: SshTestInput, ca: CertAuthority): Promise<SshTestResult> {
  const {knownHosts, node, peerNode, port} = input
  input.onInfo(`logging in to ${input.address} (this machine) and ${input.peer} (${peerNode}) through the system ssh, their host certificates checked against the authority ${ca.fingerprint} (${ca.path})…`)
  await mkdir(dirname(knownHosts), {mode: 0o700, recursive: true})
  const {connectOpenssh} = await import('../hosts/openssh-connect.js')
  const [self, peer] = await trustCertAuthority(
    {ca, hosts: [input.address, input.peer], knownHosts, port, ssh: input.ssh},
    (host, settings) => connectOpenssh(host === input.address ? node : peerNode, '/', settings, {onWarning: input.onWarning, signal: input.signal}),
    (line) => {
      input.onRecorded(line)
      input.onInfo(`added ${line} to ${knownHosts}`)
    },
  )
  await self.close()
  const hostKeys = ([[self, node, input.address], [peer, peerNode, input.peer]] as const).map(([h, n, host]) => ({
    fingerprint: h.hostKeyFingerprint ?? ca.fingerprint,
    host,
    how: 'certified by the --cert-authority key' as const,
    node: n,
  }))
  return {hostKeys, ...(await readPeer(peer))}
}

/** What the peer says its hostname is, what it has mounted and its boot configuration files; the connection is closed after. */
async function readPeer(peerHost: Host): Promise<Omit<SshTestResult, 'hostKeys'>> {
  try {
    const peerName = (await peerHost.run(['hostname'])).stdout.toString('utf8').trim() || undefined
    const mounts = await peerHost.run(['cat', '/proc/self/mounts'])
    const peerMounts = mounts.stdout
      .toString('utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f.length >= 3)
      .map(([device, target, fstype]) => ({device, fstype, target}))
    const peerBootFiles = await bootFilesOf(async (argv) => {
      const r = await peerHost.run(argv)
      if (r.code !== 0) throw new Error(`exit ${r.code}`)
      return r.stdout.toString('utf8')
    })
    return {peerBootFiles, peerMounts, peerName}
  } finally {
    await peerHost.close()
  }
}

/** A trusted key, and the key to record when known_hosts does not have it yet. */
interface Decided {
  key?: PresentedKey
  trust: HostKeyTrust
}

/** The key `host` presents; a host that cannot be reached is named as the node it stands for. */
async function readKey(what: string, host: string, port: number, knownHosts: string): Promise<PresentedKey> {
  try {
    return await presentedHostKey(host, port, knownHosts, 10_000)
  } catch (error) {
    if (!(error instanceof HaError)) throw error
    throw new HaError(`${what}: ${error.message}`, {actions: error.actions, cause: error})
  }
}

async function trustOwnKey(node: NodeName, host: string, port: number, knownHosts: string): Promise<Decided> {
  const key = await readKey(`this machine (${node})`, host, port, knownHosts)
  refuseBadKey(`this machine (${node})`, host, port, knownHosts, key)
  if (key.verdict.kind === 'known') return {trust: {fingerprint: key.fingerprint, host, how: 'in known_hosts', node}}
  if (!(await ownHostKeyFingerprints()).includes(key.fingerprint)) {
    throw new HaError(`${host}, given as this machine's address, presents the host key ${key.fingerprint}, which is not one of this machine's (/etc/ssh/ssh_host_*_key.pub); refused`, {
      actions: ['pass --address with an address of this machine (ip -br addr shows them)'],
    })
  }

  return {key, trust: {fingerprint: key.fingerprint, host, how: "this machine's own key", node}}
}

async function trustPeerKey(node: NodeName, host: string, input: SshTestInput): Promise<Decided> {
  const {knownHosts, port} = input
  const key = await readKey(`the ${node}`, host, port, knownHosts)
  refuseBadKey(`the ${node}`, host, port, knownHosts, key)
  const expected = input.peerHostKey
  if (key.verdict.kind === 'known') {
    if (expected !== undefined && expected !== key.fingerprint) throw mismatch(node, host, key.fingerprint, expected)
    return {trust: {fingerprint: key.fingerprint, host, how: 'in known_hosts', node}}
  }

  let how: HostKeyTrust['how']
  if (expected !== undefined) {
    if (expected !== key.fingerprint) throw mismatch(node, host, key.fingerprint, expected)
    how = 'given as --peer-host-key'
  } else if (!input.canAsk) {
    // Never trust on first use in a script: the operator names the key they verified.
    throw new InitConfirmationNeededError(
      `the ${node} (${host}) presents the host key ${key.fingerprint}, which ${knownHosts} does not know; trusting it needs a confirmation`,
      `--peer-host-key ${key.fingerprint}`,
      `verify it on the ${node}'s console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`,
    )
  } else {
    input.onInfo(`The ${node} (${host}) presents the host key ${key.fingerprint}, which ${knownHosts} does not know.\nCompare it on the ${node}'s console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)
    await confirmAction({action: `trust ${key.fingerprint} as the ${node}'s host key and add it to ${knownHosts}`, flag: `--peer-host-key ${key.fingerprint}`, yes: false})
    how = 'confirmed at the terminal'
  }

  return {key, trust: {fingerprint: key.fingerprint, host, how, node}}
}

function mismatch(node: NodeName, host: string, presented: string, expected: string): HaError {
  return new HaError(`the ${node} (${host}) presents the host key ${presented}, not ${expected} given as --peer-host-key; refused`, {
    actions: [`verify the key on the ${node}'s console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); a different key there means someone may be in the middle`],
  })
}

import {copyFile, mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {HaError} from '../core/errors.js'
import type {Host} from '../hosts/host.js'
import {appendKnownHostsLine} from '../hosts/known-hosts-append.js'
import {entriesForName, hostKeyName, lookupName, readKnownHosts} from '../hosts/known-hosts.js'
import type {SshSettings} from '../hosts/ssh-host.js'
import {decodeBase64Strict, fingerprint, keyTypeName, parsePublicKey} from '../hosts/ssh-key-blob.js'

/**
 * ha init --cert-authority FILE: both nodes' host keys are vouched for by a certificate authority
 * (OpenSSH host certificates), so known_hosts gets one `@cert-authority` line for both nodes'
 * names instead of their plain keys, and the nodes go through the system ssh (ssh.client:
 * openssh), which checks the certificates as ssh does. Giving the CA's public key is the
 * operator's trust decision, as --peer-host-key is for a plain key.
 */
export interface CertAuthority {
  /** "type base64", as it goes into known_hosts. */
  key: string
  blob: Buffer
  fingerprint: string
  path: string
}

/** The CA's public key file: one line "type base64 [comment]", a plain key (not a certificate). Refused by name otherwise. */
export async function readCertAuthority(path: string): Promise<CertAuthority> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new HaError(`--cert-authority ${path}: cannot read it (${error.code ?? error.message}); nothing was written`, {
      actions: ["give the certificate authority's public key file, e.g. the ca.pub next to the key ssh-keygen -s signs host keys with"],
    })
  })
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const [type, base64] = lines[0]?.split(/\s+/) ?? []
  const typeName = type ? keyTypeName(type) : undefined
  const blob = base64 ? decodeBase64Strict(base64) : undefined
  const parsed = typeName && blob ? parsePublicKey(typeName, blob) : undefined
  if (lines.length !== 1 || !blob || !parsed || parsed.certifiedKey) {
    throw new HaError(`--cert-authority ${path}: not one public key line ("ssh-ed25519 AAAA… comment"), or a certificate rather than the authority's key; nothing was written`, {
      actions: ["give the certificate authority's public key (ssh-keygen -y -f CA_KEY prints it), not a host's certificate"],
    })
  }

  return {blob, fingerprint: fingerprint(blob), key: `${type} ${base64}`, path}
}

/** Both nodes' names as known_hosts holds them: "[host]:port" off port 22. */
const names = (hosts: string[], port: number) => hosts.map((h) => lookupName(hostKeyName(h, port)))

/** The @cert-authority line for both nodes, or undefined when known_hosts already has this CA for both. */
export async function certAuthorityLine(knownHosts: string, ca: CertAuthority, hosts: string[], port: number): Promise<string | undefined> {
  const entries = await readKnownHosts(knownHosts).catch(() => [])
  const covered = (host: string) =>
    entriesForName(entries, hostKeyName(host, port)).some((e) => e.marker === 'cert-authority' && e.key.blob.equals(ca.blob))
  if (hosts.every(covered)) return undefined
  return `@cert-authority ${names(hosts, port).join(',')} ${ca.key}\n`
}

/**
 * Logs in to both nodes through the system ssh with the CA line in a copy of known_hosts; only
 * when both certificates are accepted does the line go into known_hosts itself (a refusal changes
 * nothing). Returns the connected hosts, this machine's first.
 */
export async function trustCertAuthority(
  input: {ca: CertAuthority; hosts: [string, string]; knownHosts: string; port: number; ssh: (host: string) => SshSettings},
  connect: (host: string, settings: SshSettings) => Promise<Host>,
  onRecorded: (line: string) => void,
): Promise<Host[]> {
  const line = await certAuthorityLine(input.knownHosts, input.ca, input.hosts, input.port)
  const dir = await mkdtemp(join(tmpdir(), 'ha-init-ca-'))
  const trial = join(dir, 'known_hosts')
  const connected: Host[] = []
  try {
    await copyFile(input.knownHosts, trial).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
    })
    if (line) await appendKnownHostsLine(trial, Buffer.from(line))
    for (const host of input.hosts) connected.push(await connect(host, {...input.ssh(host), known_hosts: trial}))
  } catch (error) {
    await Promise.all(connected.map((h) => h.close()))
    // The refusal names the file ssh read: said as the file it stands for.
    if (error instanceof Error) error.message = error.message.replaceAll(trial, `${input.knownHosts} with ${line ? 'the @cert-authority line of ' : ''}${input.ca.path}`)
    throw error
  } finally {
    await rm(dir, {force: true, recursive: true})
  }

  if (line) {
    await appendKnownHostsLine(input.knownHosts, Buffer.from(line))
    onRecorded(line.trim())
  }

  return connected
}

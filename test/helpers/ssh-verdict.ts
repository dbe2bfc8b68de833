import {execFile} from 'node:child_process'

import {connectSsh} from '../../src/hosts/ssh-connect.js'
import {SshConnectError, type SshSettings} from '../../src/hosts/ssh-host.js'
import type {TestSshd} from './sshd.js'

/** What ssh(1) and ha decided about a server's host key, in the same words for both. */
export type Verdict = 'changed' | 'connect' | 'revoked' | 'unknown' | `error: ${string}`
export type Policy = 'accept-new' | 'strict'

export function sshVerdict(code: number, stderr: string): Verdict {
  if (code === 0) return 'connect'
  if (stderr.includes('REMOTE HOST IDENTIFICATION HAS CHANGED')) return 'changed'
  // A bare-host @revoked line makes ssh print the revoked warning and then refuse [host]:port
  // as unknown: the last word is what it did.
  if (/No \S+ host key is known for/.test(stderr)) return 'unknown'
  if (stderr.includes('REVOKED HOST KEY DETECTED')) return 'revoked'
  if (stderr.includes('Host key verification failed')) return 'unknown'
  return `error: ${stderr.trim().split('\n').at(-1)}`
}

/** ssh with nothing of the machine's or the user's configuration, only what the test sets. */
export function runSsh(sshd: TestSshd, port: number, knownHosts: string, policy: Policy, identity = sshd.clientKey): Promise<{code: number; stderr: string}> {
  const argv = [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', `StrictHostKeyChecking=${policy === 'strict' ? 'yes' : 'accept-new'}`,
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'CheckHostIP=no',
    '-o', 'UpdateHostKeys=no',
    '-o', 'HashKnownHosts=no',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'ConnectTimeout=10',
    '-i', identity,
    '-p', String(port),
    `root@${sshd.host}`,
    'true',
  ]
  return new Promise((resolve) => {
    const env = {...process.env, SSH_AUTH_SOCK: ''}
    execFile('ssh', argv, {encoding: 'utf8', env, timeout: 20_000}, (error, _stdout, stderr) => {
      resolve({code: error ? (typeof error.code === 'number' ? error.code : 255) : 0, stderr})
    })
  })
}

export async function haVerdict(sshd: TestSshd, port: number, knownHosts: string, policy: Policy, warnings: string[] = []): Promise<Verdict | 'certificate'> {
  const settings: SshSettings = {
    client: 'ssh2',
    command_timeout: 20,
    connect_timeout: 10,
    host: sshd.host,
    host_key_policy: policy,
    identity_file: sshd.clientKey,
    keepalive_interval: 5,
    known_hosts: knownHosts,
    port,
    user: 'root',
  }
  try {
    const host = await connectSsh('peer', '/', settings, {onWarning: (m) => warnings.push(m)})
    await host.close()
    return 'connect'
  } catch (error) {
    if (!(error instanceof SshConnectError)) throw error
    const kinds: Record<string, Verdict | 'certificate'> = {
      host_key_certificate: 'certificate',
      host_key_changed: 'changed',
      host_key_revoked: 'revoked',
      host_key_unknown: 'unknown',
    }
    return kinds[error.kind] ?? `error: ${error.kind}: ${error.message}`
  }
}


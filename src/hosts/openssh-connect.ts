import {type ChildProcess, spawn} from 'node:child_process'
import {rmSync} from 'node:fs'
import {mkdtemp, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import debug from 'debug'

import {InterruptedError} from '../core/errors.js'
import {IdentityFileError, readIdentityFile} from './identity-file.js'
import {hostKeyName, KnownHostsUnreadable, readKnownHosts} from './known-hosts.js'
import {classifyOpensshFailure, presentedFingerprint, timedOut} from './openssh-failure.js'
import {endMaster, OpensshHost} from './openssh-host.js'
import type {ConnectOptions} from './ssh-connect.js'
import {SshConnectError, type SshFailureKind, type SshSettings} from './ssh-host.js'

const log = debug('ha:ssh')

/** Control directories of this process, removed on exit even when a close never ran. */
const controlDirs = new Set<string>()
process.once('exit', () => {
  for (const dir of controlDirs) rmSync(dir, {force: true, recursive: true})
})

/**
 * The master ssh runs under a watchdog shell that holds a pipe from ha: when ha closes it (close())
 * or dies (even by SIGKILL), `read` returns and the master is ended, so no connection outlives ha;
 * then the watchdog removes the control directory ($1), which a killed ha could not.
 * A background list's stdin is /dev/null in sh, hence the pipe kept on fd 3.
 */
const watchdog = [
  'd=$1; shift',
  'exec 3<&0',
  'ssh "$@" </dev/null 3<&- &',
  'p=$!',
  '{ read -r _ <&3; kill -TERM "$p" 2>/dev/null; } &',
  'w=$!',
  'exec 3<&-',
  'wait "$p"; s=$?',
  'kill "$w" 2>/dev/null',
  'rm -rf -- "$d"',
  'exit "$s"',
].join('\n')

/**
 * The master's options. Given on the command line, they win over ~/.ssh/config and
 * /etc/ssh/ssh_config, which still supply everything else (ProxyJump, GSSAPI, an agent, ciphers).
 */
export function masterArgv(ssh: SshSettings, controlPath: string): string[] {
  const o = (option: string) => ['-o', option]
  return [
    '-v', // "Server host key: …" and the reasons for a refusal, read by ha
    '-M', '-N', '-T', '-S', controlPath,
    ...o('ControlMaster=yes'), ...o('ControlPersist=no'),
    ...o('BatchMode=yes'),
    ...o(`StrictHostKeyChecking=${ssh.host_key_policy === 'strict' ? 'yes' : 'accept-new'}`),
    ...o(`UserKnownHostsFile=${ssh.known_hosts}`), ...o('GlobalKnownHostsFile=/dev/null'),
    ...o('UpdateHostKeys=no'), ...o('HashKnownHosts=no'), ...o('CheckHostIP=no'),
    ...o(`ConnectTimeout=${Math.max(1, Math.ceil(ssh.connect_timeout))}`),
    ...o(`ServerAliveInterval=${Math.max(1, Math.ceil(ssh.keepalive_interval))}`), ...o('ServerAliveCountMax=3'),
    ...o('ClearAllForwardings=yes'), ...o('PermitLocalCommand=no'),
    ...(ssh.identity_file ? [...o('IdentitiesOnly=yes'), ...o(`IdentityFile=${ssh.identity_file}`)] : []),
    '-p', String(ssh.port), '-l', ssh.user, '--', ssh.host,
  ]
}

/**
 * Opens the node with the system ssh: one ControlMaster per node and ha process, its socket in a
 * private 0700 directory; every command then goes through it (no new handshake). The host key is
 * OpenSSH's decision (plain keys, @cert-authority, @revoked), its failures classified as ssh2's are.
 */
export async function connectOpenssh(name: string, root: string, ssh: SshSettings, options: ConnectOptions = {}): Promise<OpensshHost> {
  const where = `${ssh.user}@${ssh.host}:${ssh.port}`
  const details = {host: ssh.host, node: name, port: ssh.port, user: ssh.user}
  const fail = (kind: SshFailureKind, what: string, actions: string[]) => new SshConnectError(kind, `cannot connect to ${name} (${where}): ${what}`, actions, details)
  if (options.signal?.aborted) throw new InterruptedError()
  // The same checks before connecting as the ssh2 transport makes, with the same kinds.
  let known
  try {
    known = await readKnownHosts(ssh.known_hosts)
  } catch (error) {
    if (!(error instanceof KnownHostsUnreadable)) throw error
    throw fail('known_hosts_unreadable', `${error.message}; refusing to connect without checking the host key`, [`make ${ssh.known_hosts} a readable file, or point ssh.known_hosts for ${name} at one`])
  }

  if (ssh.identity_file) {
    try {
      await readIdentityFile(ssh.identity_file, `nodes.${name}.ssh.identity_file`)
    } catch (error) {
      if (error instanceof IdentityFileError) throw fail('identity', error.message, error.actions)
      throw error
    }
  }

  const dir = await mkdtemp(join(tmpdir(), 'ha-ssh-'))
  controlDirs.add(dir)
  const removeDir = async () => {
    controlDirs.delete(dir)
    await rm(dir, {force: true, recursive: true})
  }

  const controlPath = join(dir, 'control')
  const argv = masterArgv(ssh, controlPath)
  log('%s: ssh %s', where, argv.join(' '))
  // Its own process group: a Ctrl-C at the terminal reaches ha, which closes the master in order.
  const master = spawn('sh', ['-c', watchdog, 'ha-ssh-master', dir, ...argv], {detached: true, stdio: ['pipe', 'ignore', 'pipe']})
  master.stdin!.on('error', () => {})
  try {
    const stderr = await masterReady(master, controlPath, ssh, (said) => classifyOpensshFailure(said, ssh, fail, known), timedOut(ssh, fail), options.signal)
    const print = presentedFingerprint(stderr) ?? 'unknown'
    log('%s: master up, host key %s', where, print)
    const warnings: string[] = []
    if (stderr.includes('Failed to add the host to the list of known hosts')) {
      // As with ssh2 (and ssh): accepted under accept-new, only remembering it failed.
      const message = `${name}: could not add the new host key ${print} for ${hostKeyName(ssh.host, ssh.port)} to ${ssh.known_hosts}; connected anyway, as ssh does under accept-new. Make ${ssh.known_hosts} writable so the key is remembered`
      warnings.push(message)
      options.onWarning?.(message)
    }

    return new OpensshHost(name, root, ssh, master, controlPath, print, removeDir, warnings)
  } catch (error) {
    await endMaster(master)
    await removeDir()
    throw error
  }
}

/**
 * Resolves with the master's stderr so far once its control socket is in place (ssh links it
 * there only after authentication and listen), rejects with the classified failure when ssh exits,
 * with `timeout` when connect_timeout passes first (a ProxyJump hop included).
 */
function masterReady(master: ChildProcess, controlPath: string, ssh: SshSettings, classify: (stderr: string) => SshConnectError, tooLate: SshConnectError, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = ''
    let settled = false
    const onData = (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    }

    const settle = (error?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearInterval(poll)
      signal?.removeEventListener('abort', onAbort)
      master.off('exit', onExit)
      master.stderr!.off('data', onData)
      if (error) reject(error)
      else resolve(stderr)
    }

    const onExit = () => {
      // The pipe may still hold ssh's last words: wait for it to end before judging.
      if (master.stderr!.readableEnded) settle(classify(stderr))
      else master.stderr!.once('end', () => settle(classify(stderr)))
    }

    const onAbort = () => settle(new InterruptedError())
    const timer = setTimeout(() => settle(tooLate), ssh.connect_timeout * 1000)
    const poll = setInterval(() => {
      stat(controlPath).then(
        (s) => s.isSocket() && settle(),
        () => {},
      )
    }, 20)
    master.stderr!.on('data', onData)
    master.once('exit', onExit)
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

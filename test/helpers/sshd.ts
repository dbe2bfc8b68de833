import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/**
 * A real OpenSSH sshd on 127.0.0.1 for one test file: its own host keys (ed25519 unless other
 * types are asked for), its own authorized key,
 * a random free port, foreground (-D) with logs on stderr (-e). Killed in t.after and, should the
 * test runner die first, on process exit. Nothing of the machine's own sshd or /etc/ssh is used.
 */
export interface TestSshd {
  dir: string
  host: string
  port: number
  /** The client's private key (authorized for root). */
  clientKey: string
  /** The server's (first) public host key line: "ssh-ed25519 AAAA...". */
  hostKeyLine: string
  /** Every host key the server holds, in the order asked for: "ecdsa" etc., and its "type base64" line. */
  hostKeys: Array<{type: string; line: string}>
  /** Every port it listens on (the first is `port`). */
  ports: number[]
  /** A known_hosts line for this server: "[127.0.0.1]:port ssh-ed25519 AAAA...". */
  knownHostsLine: string
  /** The listening sshd's pid (its children serve the connections). */
  pid: number
  log(): string
  stop(): Promise<void>
}

const running = new Set<ChildProcess>()
const tempDirs = new Set<string>()
const cleanupAll = () => {
  for (const child of running) child.kill('SIGKILL')
  for (const dir of tempDirs) rmSync(dir, {force: true, recursive: true})
}

process.on('exit', cleanupAll)
// 'exit' does not run when a signal kills the process: clean up, then die of the same signal.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanupAll()
    process.kill(process.pid, signal)
  })
}

export function makeKey(path: string, type = 'ed25519', bits?: number): string {
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', 'ha-test', '-f', path])
  return readFileSync(`${path}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ')
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

/** Pass `t` (a test context) to stop it in t.after; inside describe(), call `after(() => sshd.stop())`. */
export async function startSshd(
  options: {
    /** Run inside this network namespace (made by the test), listening on `listen` port 22. */
    netns?: string
    listen?: string
    /** Host key types (ssh-keygen -t, optionally "ecdsa:384", "rsa:2048"); default ["ed25519"]. */
    hostKeyTypes?: string[]
    /** Sign the first host key with this CA private key and serve the certificate (HostCertificate). */
    hostCertificateCa?: string
    /** With hostCertificateCa: the certificate's principals (ssh-keygen -n; default the listen address, "" for none) and validity (-V). */
    hostCertificate?: {principals?: string; validity?: string}
    /** Listen on this many more free ports as well (one server, several [host]:port names). */
    extraPorts?: number
    /** Environment for every session (sshd's SetEnv, which overrides its default PATH): e.g. a PATH where `ha` is the built CLI. */
    env?: Record<string, string>
    t?: {after: (fn: () => Promise<void> | void) => void}
  } = {},
): Promise<TestSshd> {
  const listen = options.listen ?? '127.0.0.1'
  const dir = mkdtempSync(join(tmpdir(), 'ha-sshd-'))
  tempDirs.add(dir)
  const hostKeys = (options.hostKeyTypes ?? ['ed25519']).map((spec) => {
    const [type, bits] = spec.split(':')
    const path = join(dir, `host_${type}${bits ?? ''}`)
    return {line: makeKey(path, type, bits ? Number(bits) : undefined), path, type: spec}
  })
  const hostKeyLine = hostKeys[0].line
  let certificate: string | undefined
  if (options.hostCertificateCa) {
    const principals = options.hostCertificate?.principals ?? listen
    const validity = options.hostCertificate?.validity
    execFileSync('ssh-keygen', ['-q', '-s', options.hostCertificateCa, '-I', 'ha-test-host', '-h', ...(principals ? ['-n', principals] : []), ...(validity ? ['-V', validity] : []), `${hostKeys[0].path}.pub`])
    certificate = `${hostKeys[0].path}-cert.pub`
  }

  const clientKey = join(dir, 'client_ed25519')
  const clientPub = makeKey(clientKey)
  writeFileSync(join(dir, 'authorized_keys'), `${clientPub}\n`, {mode: 0o600})
  // sshd refuses to start without its privilege-separation directory; the package creates it at boot.
  mkdirSync('/run/sshd', {mode: 0o755, recursive: true})

  for (let attempt = 1; ; attempt++) {
    const port = options.netns ? 22 : await freePort()
    const extra: number[] = []
    for (let i = 0; i < (options.extraPorts ?? 0); i++) {
      let p = await freePort()
      while (p === port || extra.includes(p)) p = await freePort()
      extra.push(p)
    }

    const config = join(dir, 'sshd_config')
    writeFileSync(
      config,
      [
        ...[port, ...extra].map((p) => `Port ${p}`),
        `ListenAddress ${listen}`,
        ...hostKeys.map((k) => `HostKey ${k.path}`),
        ...(certificate ? [`HostCertificate ${certificate}`] : []),
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        `PidFile ${join(dir, 'sshd.pid')}`,
        'MaxStartups 100',
        'MaxSessions 100',
        'LogLevel VERBOSE',
        // One SetEnv line: sshd keeps only the first.
        ...(options.env ? [`SetEnv ${Object.entries(options.env).map(([name, value]) => `${name}=${value}`).join(' ')}`] : []),
        '',
      ].join('\n'),
    )
    const argv = ['/usr/sbin/sshd', '-D', '-e', '-f', config]
    // sshd logs into a file, not a pipe: a test blocked in spawnSync (ha running) reads no pipe,
    // and sshd blocked on a full one accepts no connection (seen on Node 24 after ~11 checks).
    const logFile = join(dir, 'sshd.log')
    const logFd = openSync(logFile, 'a', 0o600)
    const child = spawn(options.netns ? 'ip' : argv[0], options.netns ? ['netns', 'exec', options.netns, ...argv] : argv.slice(1), {stdio: ['ignore', 'ignore', logFd]})
    closeSync(logFd)
    running.add(child)
    const readLog = () => {
      try {
        return readFileSync(logFile, 'utf8')
      } catch {
        return ''
      }
    }

    let log = ''
    const ready = await new Promise<boolean>((resolve) => {
      let exited = false
      child.on('exit', () => (exited = true))
      const deadline = Date.now() + 10_000
      const poll = () => {
        log = readLog()
        if ([port, ...extra].every((p) => log.includes(`Server listening on ${listen} port ${p}.`))) return resolve(true)
        if (exited || Date.now() > deadline) return resolve(false)
        setTimeout(poll, 25)
      }

      poll()
    })
    if (!ready) {
      child.kill('SIGKILL')
      running.delete(child)
      // Another process may have taken the port between our probe and sshd's bind: try again, a few times.
      if (attempt < 3 && /Address already in use/.test(log)) continue
      throw new Error(`sshd did not start within 10s:\n${log}`)
    }

    const stop = async () => {
      if (running.has(child)) {
        running.delete(child)
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))])
        child.kill('SIGKILL')
      }

      rmSync(dir, {force: true, recursive: true})
      tempDirs.delete(dir)
    }

    options.t?.after(stop)
    return {
      clientKey,
      dir,
      host: listen,
      hostKeyLine,
      hostKeys: hostKeys.map(({line, type}) => ({line, type})),
      knownHostsLine: `${port === 22 ? listen : `[${listen}]:${port}`} ${hostKeyLine}`,
      log: () => readLog(),
      pid: child.pid!,
      port,
      ports: [port, ...extra],
      stop,
    }
  }
}

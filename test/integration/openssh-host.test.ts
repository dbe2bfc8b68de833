import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {type AddressInfo, createServer, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import type {RemoteHost} from '../../src/hosts/remote-host.js'
import {connectOpenssh} from '../../src/hosts/openssh-connect.js'
import type {OpensshHost} from '../../src/hosts/openssh-host.js'
import {connectSsh} from '../../src/hosts/ssh-connect.js'
import {SshConnectError, SshConnectionLost, type SshSettings} from '../../src/hosts/ssh-host.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd, type TestSshd} from '../helpers/sshd.js'

/**
 * ssh.client: openssh against a real sshd, side by side with the ssh2 transport on the same
 * server and the same inputs: the same results, one handshake for many commands, nothing left
 * after close, and refusals of the same kinds.
 */
const skip = missingPrerequisite(['root', 'sshd'])

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('the OpenSSH transport against a real sshd, beside ssh2', {skip}, () => {
  let sshd: TestSshd
  let work: string
  let knownHosts: string
  let viaSsh2: RemoteHost
  let viaOpenssh: OpensshHost
  const settings = (over: Partial<SshSettings> = {}): SshSettings => ({
    client: 'openssh',
    command_timeout: 20,
    connect_timeout: 5,
    host: '127.0.0.1',
    host_key_policy: 'strict',
    identity_file: sshd.clientKey,
    keepalive_interval: 5,
    known_hosts: knownHosts,
    port: sshd.port,
    user: 'root',
    ...over,
  })
  const accepted = () => sshd.log().split('\n').filter((l) => l.includes('Accepted publickey')).length

  before(async () => {
    sshd = await startSshd()
    work = mkdtempSync(join(tmpdir(), 'ha-openssh-test-'))
    knownHosts = join(work, 'known_hosts')
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`)
    viaSsh2 = await connectSsh('primary', work, settings({client: 'ssh2'}))
    viaOpenssh = await connectOpenssh('primary', work, settings())
  })
  after(async () => {
    await viaSsh2?.close()
    await viaOpenssh?.close()
    await sshd?.stop()
    rmSync(work, {force: true, recursive: true})
  })

  test('both present the same host key fingerprint', () => {
    assert.match(viaOpenssh.hostKeyFingerprint, /^SHA256:/)
    assert.equal(viaOpenssh.hostKeyFingerprint, viaSsh2.hostKeyFingerprint)
  })

  test('run: the same status, stdout and stderr for the same argv, nasty arguments and stdin included', async () => {
    const nasty = ['a b', "it's", '"dq"', '$(touch /tmp/ha-pwned)', '`id`', 'x\ny\n', '-n', '--', '*', '~', '#c', '; rm -rf /', '\\', '', ' lead', 'ünï', '$HOME', "'"]
    const cases: Array<{argv: string[]; stdin?: Buffer | string}> = [
      {argv: ['sh', '-c', 'echo out; echo err >&2; exit 7']},
      {argv: ['sh', '-c', 'exit 255']},
      {argv: ['sh', '-c', 'printf "no newline" >&2']},
      {argv: ['sh', '-c', 'for a; do printf "<%s>" "$a"; done', 'sh', ...nasty]},
      {argv: ['cat'], stdin: Buffer.from([0, 1, 2, 255, 10, 13])},
      {argv: ['ha-no-such-command']},
      {argv: ['printf', '%s', 'HA-STATUS-0000000000000000 0\n']},
    ]
    for (const c of cases) {
      const [a, b] = await Promise.all([viaSsh2.run(c.argv, {stdin: c.stdin}), viaOpenssh.run(c.argv, {stdin: c.stdin})])
      assert.deepEqual({code: b.code, stderr: b.stderr.toString('latin1'), stdout: b.stdout.toString('latin1')}, {code: a.code, stderr: a.stderr.toString('latin1'), stdout: a.stdout.toString('latin1')}, JSON.stringify(c.argv))
    }
  })

  test('writeFile, readFile and stat: what one transport writes the other reads back the same', async () => {
    mkdirSync(join(work, 'etc'), {recursive: true})
    const data = Buffer.from([0, 1, 2, 255, 10, 13, 0x27])
    await viaOpenssh.writeFile('/etc/blob', data, 0o640)
    assert.deepEqual(readFileSync(join(work, 'etc/blob')), data)
    assert.deepEqual(await viaSsh2.readFile('/etc/blob'), data)
    assert.deepEqual(await viaOpenssh.readFile('/etc/blob'), data)
    for (const path of ['/etc/blob', '/etc', '/etc/no such file']) assert.deepEqual(await viaOpenssh.stat(path), await viaSsh2.stat(path), path)
    await viaSsh2.writeFile('/etc/blob', 'again', 0o600)
    assert.equal((await viaOpenssh.readFile('/etc/blob')).toString(), 'again')
    assert.equal((await viaOpenssh.stat('/etc/blob'))?.mode, 0o600)
    const [a, b] = await Promise.allSettled([viaSsh2.readFile('/etc/missing'), viaOpenssh.readFile('/etc/missing')])
    assert.equal(a.status, 'rejected')
    assert.equal(b.status, 'rejected')
    assert.equal((b as PromiseRejectedResult).reason.message, (a as PromiseRejectedResult).reason.message)
  })

  test('probe: the same results for the same batch', async () => {
    const batch = [
      {argv: ['printf', 'HA-PROBE fake 0 0 0\n'], id: 'forged-header'},
      {argv: ['sh', '-c', 'printf "x\\0y"; echo oops >&2; exit 3'], id: 'binary'},
      {argv: ['ha-no-such-command'], id: 'missing'},
      {argv: ['cat', join(work, 'etc/blob')], id: 'cat'},
    ]
    const [a, b] = await Promise.all([viaSsh2.probe(batch), viaOpenssh.probe(batch)])
    assert.deepEqual(b.results, a.results)
    assert.ok(Math.abs(b.host_time_s - Date.now() / 1000) < 5, 'the host clock reading is plausible')
  })

  test('a command killed by a signal, and one that times out: the same errors as ssh2', async () => {
    const killed = ['sh', '-c', 'echo dying >&2; kill -TERM $$']
    const [a, b] = await Promise.allSettled([viaSsh2.run(killed), viaOpenssh.run(killed)])
    assert.equal((b as PromiseRejectedResult).reason.message, (a as PromiseRejectedResult).reason.message)
    assert.match((b as PromiseRejectedResult).reason.message, /was killed by signal SIGTERM; stderr: dying/)
    const started = Date.now()
    await assert.rejects(viaOpenssh.run(['sleep', '41.75'], {timeoutMs: 1000}), /primary \(root@127\.0\.0\.1:\d+\): `sleep 41.75` timed out after 1s/)
    assert.ok(Date.now() - started < 5000)
    const ps = execFileSync('sh', ['-c', 'sleep 1; pgrep -fx "sleep 41.75" || true'], {encoding: 'utf8'})
    assert.equal(ps.trim(), '', 'the remote sleep was killed, not left running')
  })

  test('one handshake for many commands; after close no master, no socket, no directory', async () => {
    const before = accepted()
    const host = await connectOpenssh('secondary', '/', settings())
    const controlDir = dirname((host as unknown as {controlPath: string}).controlPath)
    assert.ok(existsSync(controlDir))
    assert.equal(execFileSync('stat', ['-c', '%a', controlDir], {encoding: 'utf8'}).trim(), '700', 'the control directory is private')
    await Promise.all(Array.from({length: 8}, (_, i) => host.run(['echo', String(i)])))
    for (let i = 0; i < 4; i++) await host.stat('/etc/passwd')
    await host.probe([{argv: ['true'], id: 't'}])
    assert.equal(accepted() - before, 1, 'one authentication for 13 commands')
    const pid = host.masterPid!
    assert.ok(alive(pid))
    await host.close()
    assert.ok(!alive(pid), 'the master is gone')
    assert.ok(!existsSync(controlDir), 'its directory is gone')
    await assert.rejects(host.run(['true']), /secondary .*closed/)
  })

  test('the master ends when the ha process dies, even by SIGKILL', async () => {
    const script = `import {connectOpenssh} from ${JSON.stringify(join(process.cwd(), 'src/hosts/openssh-connect.ts'))}
const h = await connectOpenssh('n', '/', ${JSON.stringify(settings())})
console.log(h.masterPid, (h as any).controlPath)
setInterval(() => {}, 1000)`
    const file = join(work, 'holder.mts')
    writeFileSync(file, script)
    const {spawn} = await import('node:child_process')
    const child = spawn(process.execPath, ['--import', 'tsx', file], {stdio: ['ignore', 'pipe', 'inherit']})
    const [pid, controlPath] = await new Promise<[number, string]>((resolve) =>
      child.stdout.once('data', (d: Buffer) => {
        const [p, path] = d.toString().trim().split(' ')
        resolve([Number(p), path])
      }),
    )
    assert.ok(alive(pid))
    assert.ok(existsSync(controlPath), 'the control socket is there while ha runs')
    child.kill('SIGKILL')
    const deadline = Date.now() + 5000
    while (alive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.ok(!alive(pid), 'the master did not outlive its ha process')
    while (existsSync(dirname(controlPath)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.ok(!existsSync(dirname(controlPath)), 'nor did its control directory')
  })

  test('keepalive notices a peer that stopped answering: the running command fails as a lost connection, naming the host', async () => {
    const children = () => new Set(execFileSync('sh', ['-c', 'pgrep -P "$1" || true', 'sh', String(sshd.pid)], {encoding: 'utf8'}).trim().split('\n').filter(Boolean))
    const others = children()
    const h = await connectOpenssh('secondary', '/', settings({keepalive_interval: 1}))
    const serving = [...children()].filter((pid) => !others.has(pid))
    assert.equal(serving.length, 1, 'found the sshd process serving this connection')
    const running = h.run(['sleep', '43.25'], {timeoutMs: 15_000})
    await new Promise((resolve) => setTimeout(resolve, 300))
    const started = Date.now()
    process.kill(Number(serving[0]), 'SIGSTOP')
    try {
      await assert.rejects(running, (error: Error) => {
        assert.ok(error instanceof SshConnectionLost, `${error.constructor.name}: ${error.message}`)
        assert.match(error.message, /secondary \(root@127\.0\.0\.1:\d+\): the SSH connection was lost/)
        return true
      })
      assert.ok(Date.now() - started < 10_000, `noticed within a few keepalive intervals (${Date.now() - started}ms)`)
    } finally {
      process.kill(Number(serving[0]), 'SIGCONT')
      try {
        process.kill(Number(serving[0]), 'SIGTERM')
      } catch {}

      await h.close()
    }
  })

  test('refusals are of the same kind as with ssh2: unknown, changed, revoked host key, bad auth, refused port', async () => {
    const other = makeKey(join(work, 'other'))
    const files: Record<string, string> = {
      changed: `[127.0.0.1]:${sshd.port} ${other}\n`,
      revoked: `${sshd.knownHostsLine}\n@revoked [127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n`,
      unknown: '',
    }
    const expected: Record<string, string> = {changed: 'host_key_changed', revoked: 'host_key_revoked', unknown: 'host_key_unknown'}
    const wrongKey = join(work, 'wrong')
    makeKey(wrongKey)
    const attempts: Array<[string, Partial<SshSettings>, string]> = [
      ...Object.entries(files).map(([name, text]): [string, Partial<SshSettings>, string] => {
        const path = join(work, `kh-${name}`)
        writeFileSync(path, text)
        return [name, {known_hosts: path}, expected[name]]
      }),
      ['bad key', {identity_file: wrongKey}, 'auth'],
      ['closed port', {port: 1}, 'refused'],
      ['unreadable known_hosts', {known_hosts: work}, 'known_hosts_unreadable'],
    ]
    for (const [name, over, kind] of attempts) {
      const kinds: string[] = []
      const messages: string[] = []
      for (const connect of [connectSsh, connectOpenssh]) {
        await assert.rejects(connect('peer', '/', settings(over)), (error: Error) => {
          assert.ok(error instanceof SshConnectError, `${name}: ${error.message}`)
          kinds.push(error.kind)
          messages.push(error.message)
          assert.match(error.message, /^cannot connect to peer \(root@127\.0\.0\.1:\d+\): /)
          return true
        })
      }

      assert.deepEqual(kinds, [kind, kind], name)
      if (name === 'changed') {
        // Both name the key presented and the key known, with its line: what the failover's refusal reads.
        const [a, b] = messages.map((m) => /presented (SHA256:\S+), but \[127\.0\.0\.1\]:\d+ is known with (SHA256:\S+) \(ssh-ed25519, \S+ line 1\)/.exec(m)?.slice(1))
        assert.ok(a && b, messages.join('\n'))
        assert.deepEqual(b, a)
      }
    }
  })
  test('accept-new: both transports add the same line, and both warn and connect when known_hosts cannot be written', async () => {
    const written: string[] = []
    for (const [i, connect] of [connectSsh, connectOpenssh].entries()) {
      const path = join(work, `kh-accept-${i}`)
      const host = await connect('peer', '/', settings({host_key_policy: 'accept-new', known_hosts: path}))
      await host.close()
      written.push(readFileSync(path, 'latin1'))
      const warnings: string[] = []
      const unwritable = join(work, 'no-such-dir', 'known_hosts')
      const again = await connect('peer', '/', settings({host_key_policy: 'accept-new', known_hosts: unwritable}), {onWarning: (m) => warnings.push(m)})
      await again.close()
      assert.equal(warnings.length, 1, `${connect.name}: ${warnings.join('; ')}`)
      assert.match(warnings[0], /could not add the new host key SHA256:\S+ for \[127\.0\.0\.1\]:\d+ to .*no-such-dir\/known_hosts.*connected anyway/)
    }

    assert.equal(written[1], written[0])
    assert.equal(written[0], `${sshd.knownHostsLine}\n`)
  })

  test('a server that accepts TCP but never speaks SSH: timeout with both, within connect_timeout', async () => {
    const held: Socket[] = []
    const silent = createServer((socket) => held.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    try {
      const port = (silent.address() as AddressInfo).port
      for (const connect of [connectSsh, connectOpenssh]) {
        const started = Date.now()
        await assert.rejects(connect('peer', '/', settings({connect_timeout: 2, port})), (error: Error) => {
          assert.ok(error instanceof SshConnectError)
          assert.equal(error.kind, 'timeout', `${connect.name}: ${error.message}`)
          return true
        })
        assert.ok(Date.now() - started < 6000, `${connect.name} gave up in time`)
      }
    } finally {
      for (const socket of held) socket.destroy()
      silent.close()
    }
  })
})

describe('host certificates through the OpenSSH transport', {skip}, () => {
  let work: string
  let sshd: TestSshd
  let caLine: string

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ha-openssh-ca-'))
    caLine = makeKey(join(work, 'ca'))
    sshd = await startSshd({hostCertificateCa: join(work, 'ca')})
  })
  after(async () => {
    await sshd?.stop()
    rmSync(work, {force: true, recursive: true})
  })

  test('a host whose certificate a @cert-authority line vouches for is accepted by openssh; ssh2 refuses it and names ssh.client: openssh', async () => {
    const path = join(work, 'known_hosts')
    const text = `@cert-authority [127.0.0.1]:${sshd.port} ${caLine}\n`
    writeFileSync(path, text)
    const over: SshSettings = {
      client: 'openssh', command_timeout: 20, connect_timeout: 5, host: '127.0.0.1', host_key_policy: 'strict',
      identity_file: sshd.clientKey, keepalive_interval: 5, known_hosts: path, port: sshd.port, user: 'root',
    }
    const host = await connectOpenssh('peer', '/', over)
    try {
      assert.equal((await host.run(['echo', 'vouched'])).stdout.toString(), 'vouched\n')
      const plain = execFileSync('ssh-keygen', ['-lf', join(sshd.dir, 'host_ed25519.pub')], {encoding: 'utf8'}).split(' ')[1]
      assert.equal(host.hostKeyFingerprint, plain, 'the fingerprint is the certified plain key, as ssh-keygen -l shows it on the host')
    } finally {
      await host.close()
    }

    await assert.rejects(connectSsh('peer', '/', {...over, client: 'ssh2'}), (error: SshConnectError) => {
      assert.equal(error.kind, 'host_key_certificate')
      assert.match(error.actions.join('\n'), /ssh\.client: openssh/)
      return true
    })
    assert.equal(readFileSync(path, 'utf8'), text, 'nothing written to known_hosts')
  })
})

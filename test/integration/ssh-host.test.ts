import assert from 'node:assert/strict'
import {execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {connectSsh} from '../../src/hosts/ssh-connect.js'
import {SshConnectError, type SshHost, type SshSettings} from '../../src/hosts/ssh-host.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd, type TestSshd} from '../helpers/sshd.js'

const skip = missingPrerequisite(['root', 'sshd'])

describe('SshHost against a real OpenSSH sshd on 127.0.0.1', {skip}, () => {
  let sshd: TestSshd
  let work: string
  let knownHosts: string
  let host: SshHost
  const settings = (over: Partial<SshSettings> = {}): SshSettings => ({
    client: 'ssh2',
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

  before(async () => {
    sshd = await startSshd()
    work = mkdtempSync(join(tmpdir(), 'ha-ssh-test-'))
    knownHosts = join(work, 'known_hosts')
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`)
    host = await connectSsh('primary', work, settings())
  })
  after(async () => {
    await host?.close()
    await sshd?.stop()
    rmSync(work, {force: true, recursive: true})
  })

  test('runs an argv and returns its status, stdout and stderr', async () => {
    const result = await host.run(['sh', '-c', 'echo out; echo err >&2; exit 7'])
    assert.equal(result.code, 7)
    assert.equal(result.stdout.toString(), 'out\n')
    assert.equal(result.stderr.toString(), 'err\n')
  })

  test('nasty arguments arrive exactly as given', async () => {
    const nasty = ['a b', "it's", '"dq"', '$(touch /tmp/ha-pwned)', '`id`', 'x\ny\n', '-n', '--', '*', '~', '#c', '; rm -rf /', '\\', '', ' lead', 'ünï', '$HOME', "'"]
    for (const arg of nasty) {
      const result = await host.run(['printf', '%s', arg])
      assert.equal(result.stdout.toString(), arg, `argument ${JSON.stringify(arg)}`)
    }

    const all = await host.run(['sh', '-c', 'for a; do printf "<%s>" "$a"; done', 'sh', ...nasty])
    assert.equal(all.stdout.toString(), nasty.map((a) => `<${a}>`).join(''))
  })

  test('refuses an argument a shell cannot carry unchanged instead of altering it', async () => {
    await assert.rejects(host.run(['printf', '%s', 'a\rb']), /control character/)
  })

  test('writeFile is atomic and sets the mode; readFile and stat read it back under the root', async () => {
    mkdirSync(join(work, 'etc'), {recursive: true})
    const data = Buffer.from([0, 1, 2, 255, 10, 13, 0x27])
    await host.writeFile('/etc/blob', data, 0o640)
    assert.deepEqual(readFileSync(join(work, 'etc/blob')), data)
    assert.deepEqual(await host.readFile('/etc/blob'), data)
    const st = await host.stat('/etc/blob')
    assert.equal(st?.type, 'file')
    assert.equal(st?.mode, 0o640)
    assert.equal(st?.size, data.length)
    assert.equal((await host.stat('/etc'))?.type, 'directory')
    assert.equal(await host.stat('/etc/no such file'), undefined)
    await assert.rejects(host.readFile('/etc/missing'), /primary .*cannot read .*\/etc\/missing: .*No such file/)
  })

  test('a batch of probes runs in one exec and keeps each output separate', async () => {
    const batch = await host.probe([
      {argv: ['printf', 'HA-PROBE fake 0 0 0\n'], id: 'forged-header'},
      {argv: ['sh', '-c', 'printf "x\\0y"; echo oops >&2; exit 3'], id: 'binary'},
      {argv: ['ha-no-such-command'], id: 'missing'},
      {argv: ['cat', join(work, 'etc/blob')], id: 'cat'},
    ])
    const [forged, binary, missing, cat] = batch.results
    assert.equal(forged.stdout.toString(), 'HA-PROBE fake 0 0 0\n')
    assert.equal(binary.code, 3)
    assert.equal(binary.stdout.toString('latin1'), 'x\0y')
    assert.equal(binary.stderr.toString(), 'oops\n')
    assert.equal(missing.code, 127)
    assert.deepEqual(cat.stdout, readFileSync(join(work, 'etc/blob')))
    assert.ok(Math.abs(batch.host_time_s - Date.now() / 1000) < 5, 'the host clock reading is plausible')
  })

  test('a hanging command times out, is killed, and the error names host and command', async () => {
    const started = Date.now()
    await assert.rejects(host.run(['sleep', '41.25'], {timeoutMs: 1000}), (error: Error) => {
      assert.match(error.message, /primary \(root@127\.0\.0\.1:\d+\): `sleep 41.25` timed out after 1s/)
      return true
    })
    assert.ok(Date.now() - started < 5000)
    const ps = execFileSync('sh', ['-c', 'sleep 1; pgrep -fx "sleep 41.25" || true'], {encoding: 'utf8'})
    assert.equal(ps.trim(), '', 'the remote sleep was killed, not left running')
  })

  test('a command killed by a signal is an error naming host, command and stderr', async () => {
    await assert.rejects(host.run(['sh', '-c', 'echo dying >&2; kill -TERM $$']), (error: Error) => {
      assert.match(error.message, /primary .*`sh -c .*` was killed by signal SIGTERM; stderr: dying/)
      return true
    })
  })

  test('keepalive notices a peer that stopped answering, and the running command fails naming the host', async () => {
    const children = () => new Set(execFileSync('sh', ['-c', 'pgrep -P "$1" || true', 'sh', String(sshd.pid)], {encoding: 'utf8'}).trim().split('\n').filter(Boolean))
    const others = children()
    const h = await connectSsh('secondary', '/', settings({keepalive_interval: 0.5}))
    // Freeze the sshd process serving this connection (the listener's new child): the TCP
    // connection stays open but nothing answers, like a hung host or a cut cable.
    const serving = [...children()].filter((pid) => !others.has(pid))
    assert.equal(serving.length, 1, 'found the sshd process serving this connection')
    // The remote timeout (8s) ends the sleep even though its sshd is frozen; keepalive must win.
    const running = h.run(['sleep', '43.5'], {timeoutMs: 8000})
    await new Promise((resolve) => setTimeout(resolve, 300))
    const started = Date.now()
    process.kill(Number(serving[0]), 'SIGSTOP')
    try {
      await assert.rejects(running, /secondary \(root@127\.0\.0\.1:\d+\): the SSH connection was lost/)
      assert.ok(Date.now() - started < 6000, `noticed within a few keepalive intervals (${Date.now() - started}ms)`)
    } finally {
      process.kill(Number(serving[0]), 'SIGCONT')
      // Once resumed it usually finds the client gone and exits at once; if not, end it.
      try {
        process.kill(Number(serving[0]), 'SIGTERM')
      } catch {}

      await h.close()
    }
  })

  test('unknown host key under strict is refused with its fingerprint and how to add it', async () => {
    const empty = join(work, 'empty_known_hosts')
    writeFileSync(empty, '')
    await assert.rejects(connectSsh('secondary', '/', settings({known_hosts: empty})), (error: SshConnectError) => {
      assert.equal(error.details?.kind, 'host_key_unknown')
      assert.match(error.message, /secondary \(root@127\.0\.0\.1:\d+\).*SHA256:[A-Za-z0-9+/]{43}.*not in .*empty_known_hosts/)
      assert.match(error.actions.join('\n'), /ssh-keyscan -p \d+ 127\.0\.0\.1/)
      return true
    })
    assert.equal(readFileSync(empty, 'utf8'), '', 'strict added nothing')
  })

  test('accept-new adds an unknown key, and the added line is one ssh-keygen -F finds', async () => {
    const fresh = join(work, 'fresh_known_hosts')
    const h = await connectSsh('secondary', '/', settings({host_key_policy: 'accept-new', known_hosts: fresh}))
    await h.close()
    assert.equal(readFileSync(fresh, 'utf8'), `${sshd.knownHostsLine}\n`)
    const found = execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', fresh], {encoding: 'utf8'})
    assert.match(found, /found: line 1/)
    // ...and a second connection is now verified against it under strict.
    const again = await connectSsh('secondary', '/', settings({known_hosts: fresh}))
    await again.close()
  })

  test('a changed host key is refused under every policy, with both fingerprints and the fix', async () => {
    const other = makeKey(join(work, `other_${Date.now()}`))
    const changed = join(work, 'changed_known_hosts')
    writeFileSync(changed, `[127.0.0.1]:${sshd.port} ${other}\n`)
    const serverPrint = execFileSync('ssh-keygen', ['-lf', join(sshd.dir, 'host_ed25519.pub')], {encoding: 'utf8'}).split(' ')[1]
    const knownPrint = execFileSync('ssh-keygen', ['-lf', '-'], {encoding: 'utf8', input: other}).split(' ')[1]
    for (const policy of ['strict', 'accept-new'] as const) {
      await assert.rejects(connectSsh('secondary', '/', settings({host_key_policy: policy, known_hosts: changed})), (error: SshConnectError) => {
        assert.equal(error.details?.kind, 'host_key_changed')
        assert.ok(error.message.includes(serverPrint), `server fingerprint ${serverPrint} in: ${error.message}`)
        assert.ok(error.message.includes(knownPrint), `known fingerprint ${knownPrint} in: ${error.message}`)
        assert.match(error.actions.join('\n'), new RegExp(`ssh-keygen -R '\\[127\\.0\\.0\\.1\\]:${sshd.port}' -f ${changed}`))
        return true
      })
    }

    assert.equal(readFileSync(changed, 'utf8'), `[127.0.0.1]:${sshd.port} ${other}\n`, 'known_hosts untouched')
  })

  test('a revoked key is refused even when also listed as the host key', async () => {
    const revoked = join(work, 'revoked_known_hosts')
    writeFileSync(revoked, `${sshd.knownHostsLine}\n@revoked * ${sshd.hostKeyLine}\n`)
    await assert.rejects(connectSsh('secondary', '/', settings({host_key_policy: 'accept-new', known_hosts: revoked})), (error: SshConnectError) => {
      assert.equal(error.details?.kind, 'host_key_revoked')
      assert.match(error.message, /@revoked .*line 2/)
      return true
    })
  })

  test('an unreadable known_hosts fails closed, before any connection', async () => {
    const dirInstead = join(work, 'known_hosts_dir')
    mkdirSync(dirInstead)
    await assert.rejects(connectSsh('secondary', '/', settings({host_key_policy: 'accept-new', known_hosts: dirInstead})), (error: SshConnectError) => {
      assert.equal(error.details?.kind, 'known_hosts_unreadable')
      assert.match(error.message, /cannot read known_hosts .*known_hosts_dir: EISDIR/)
      return true
    })
  })

  test('a key the server does not authorize is an authentication failure naming user and key', async () => {
    const wrong = join(work, `wrong_${Date.now()}`)
    makeKey(wrong)
    await assert.rejects(connectSsh('secondary', '/', settings({identity_file: wrong})), (error: SshConnectError) => {
      assert.equal(error.details?.kind, 'auth')
      assert.match(error.message, new RegExp(`secondary \\(root@127\\.0\\.0\\.1:${sshd.port}\\): authentication failed: user root was refused with the key ${wrong}`))
      return true
    })
  })

  test('ssh-agent is used when there is no identity_file; with neither, the error says what to set', async () => {
    const socket = join(work, 'agent.sock')
    const agent = spawn('ssh-agent', ['-D', '-a', socket], {stdio: 'ignore'})
    const saved = process.env.SSH_AUTH_SOCK
    try {
      for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 100))
      execFileSync('ssh-add', ['-q', sshd.clientKey], {env: {...process.env, SSH_AUTH_SOCK: socket}, stdio: 'ignore'})
      process.env.SSH_AUTH_SOCK = socket
      const viaAgent = await connectSsh('secondary', '/', settings({identity_file: undefined}))
      assert.equal((await viaAgent.run(['true'])).code, 0)
      await viaAgent.close()
      delete process.env.SSH_AUTH_SOCK
      await assert.rejects(connectSsh('secondary', '/', settings({identity_file: undefined})), (error: SshConnectError) => {
        assert.equal(error.details?.kind, 'identity')
        assert.match(error.message, /no identity_file in the config and no ssh-agent \(SSH_AUTH_SOCK is not set\)/)
        assert.match(error.actions[0], /nodes\.secondary\.ssh\.identity_file/)
        return true
      })
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK
      else process.env.SSH_AUTH_SOCK = saved
      agent.kill()
    }
  })

  test('a closed port is "connection refused" naming node and address', async () => {
    const server = createServer()
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as {port: number}).port)))
    await new Promise((resolve) => server.close(resolve))
    await assert.rejects(connectSsh('secondary', '/', settings({port})), (error: SshConnectError) => {
      assert.equal(error.details?.kind, 'refused')
      assert.match(error.message, new RegExp(`secondary \\(root@127\\.0\\.0\\.1:${port}\\): connection refused`))
      return true
    })
  })

  test('an sshd that accepts the connection then says nothing hits connect_timeout, naming the host', async () => {
    const sockets: Socket[] = []
    const server = createServer((socket) => sockets.push(socket))
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as {port: number}).port)))
    try {
      const started = Date.now()
      await assert.rejects(connectSsh('secondary', '/', settings({connect_timeout: 1.5, port})), (error: SshConnectError) => {
        assert.equal(error.details?.kind, 'timeout')
        assert.match(error.message, new RegExp(`secondary \\(root@127\\.0\\.0\\.1:${port}\\): no SSH handshake within connect_timeout \\(1\\.5s\\)`))
        return true
      })
      const elapsed = Date.now() - started
      assert.ok(elapsed >= 1400 && elapsed < 5000, `gave up after ${elapsed}ms`)
    } finally {
      for (const socket of sockets) socket.destroy()
      server.close()
    }
  })
})

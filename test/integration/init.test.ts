import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it, test} from 'node:test'

import {ha, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {startSshd} from '../helpers/sshd.js'
import {haInTerminal} from '../helpers/tmux.js'

/**
 * `ha init` from a script: every question is a flag judged by the config schema's own rule, a
 * refusal writes nothing, an existing configuration is never replaced without --force, and a
 * host key is never trusted without the operator naming it. The tests run the built CLI without
 * a terminal (spawnSync gives it pipes), as a script or cron would.
 */
const example = /templates\/ha\.example\.yaml/

test('without a terminal and without --yes: exit 4 naming --yes, nothing written', (t) => {
  const config = join(tempDir(t), 'ha.yaml')
  const r = ha(['init', '--config', config, '--peer', '198.18.0.3'])
  assert.equal(r.status, 4, r.stderr)
  assert.match(r.stderr, /no terminal to ask on/)
  assert.match(r.stderr, /--yes and --peer <address>/)
  assert.equal(existsSync(config), false)
})

test('a service IP that is not a CIDR is refused by the schema rule: exit 2, the flag named, the example pointed to', (t) => {
  const config = join(tempDir(t), 'ha.yaml')
  const r = ha(['init', '--yes', '--config', config, '--peer', '198.18.0.3', '--service-ip', '999.18.1.10/99', '--json'])
  assert.equal(r.status, 2)
  assert.equal(r.json?.error?.name, 'UsageError')
  assert.match(r.json!.error!.message, /^--service-ip: "999\.18\.1\.10\/99": 999 is not an octet/)
  assert.match(r.json!.error!.message, example)
  assert.equal(existsSync(config), false)
})

test('backup.dir outside the data directory (absolute, or with ..) is refused: exit 2, nothing written', (t) => {
  const config = join(tempDir(t), 'ha.yaml')
  for (const [dir, why] of [['/var/backups', /must be relative to data_dir/], ['../backups', /must stay inside data_dir: no "\.\."/], ['.', /not data_dir itself/]] as const) {
    const r = ha(['init', '--yes', '--config', config, '--peer', '198.18.0.3', '--backup-dir', dir])
    assert.equal(r.status, 2, `--backup-dir ${dir}: ${r.stderr}`)
    assert.match(r.stderr, why)
    assert.match(r.stderr, /--backup-dir/)
  }

  assert.equal(existsSync(config), false)
})

test('--yes without --peer: exit 2 naming --peer (nothing on the machine proposes the other node)', (t) => {
  const config = join(tempDir(t), 'ha.yaml')
  const r = ha(['init', '--yes', '--config', config, '--address', '127.0.0.1'])
  assert.equal(r.status, 2, r.stderr)
  assert.match(r.stderr, /--peer is needed/)
  assert.match(r.stderr, example)
  assert.equal(existsSync(config), false)
})

test('an existing configuration is not replaced without --force: exit 4 naming --force, the file unchanged', (t) => {
  const config = join(tempDir(t), 'ha.yaml')
  writeFileSync(config, 'data_dir: /srv/mine\n')
  for (const args of [['--yes'], []]) {
    const r = ha(['init', ...args, '--config', config, '--peer', '198.18.0.3'])
    assert.equal(r.status, 4, r.stderr)
    assert.match(r.stderr, args.length > 0 ? /ha\.yaml exists; replacing it needs a confirmation/ : /no terminal/)
    assert.match(r.stderr, args.length > 0 ? /--force/ : /--yes/)
  }

  assert.equal(readFileSync(config, 'utf8'), 'data_dir: /srv/mine\n')
})

describe('ha init --yes against a real sshd', {skip: missingPrerequisite(['root', 'sshd'])}, () => {
  /**
   * One sshd stands for both nodes: this machine at 127.0.0.1 (its key already in known_hosts,
   * as after a first ssh), the peer at "localhost" (a name known_hosts does not have).
   */
  async function setUp(t: Parameters<typeof tempDir>[0]) {
    const sshd = await startSshd({t})
    const dir = tempDir(t)
    const knownHosts = join(dir, 'known_hosts')
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`)
    const dataDir = join(dir, 'data')
    mkdirSync(dataDir)
    const print = execFileSync('ssh-keygen', ['-lf', '-'], {encoding: 'utf8', input: sshd.hostKeyLine}).split(' ')[1]
    const config = join(dir, 'etc/ha/ha.yaml')
    const args = [
      'init', '--yes', '--config', config, '--no-check',
      '--address', '127.0.0.1', '--peer', 'localhost', '--ssh-port', String(sshd.port),
      '--identity-file', sshd.clientKey, '--known-hosts', knownHosts,
      '--hostname', 'ctl-a', '--peer-hostname', 'ctl-b', '--data-dir', dataDir, '--storage', 'none',
      '--service-ip', '198.18.1.10/24', '--interface', 'eth0', '--services', '',
    ]
    return {args, config, knownHosts, print, sshd}
  }

  it('an unknown peer host key stops --yes with exit 4 naming --peer-host-key and the fingerprint; a wrong one is refused; the configuration not written, the answers kept as its draft', async (t) => {
    const {args, config, knownHosts, print} = await setUp(t)
    const before = readFileSync(knownHosts, 'utf8')
    const unknown = ha(args)
    assert.equal(unknown.status, 4, unknown.stderr)
    assert.ok(unknown.stderr.includes(`the secondary (localhost) presents the host key ${print}, which ${knownHosts} does not know`), unknown.stderr)
    assert.ok(unknown.stderr.includes(`--peer-host-key ${print}`), unknown.stderr)
    const wrong = ha([...args, '--peer-host-key', `SHA256:${'A'.repeat(43)}`])
    assert.equal(wrong.status, 1, wrong.stderr)
    assert.match(wrong.stderr, /presents the host key .* not SHA256:A+ given as --peer-host-key; refused/)
    assert.equal(existsSync(config), false)
    assert.match(readFileSync(`${config}.draft`, 'utf8'), /^# DRAFT of /)
    assert.equal(readFileSync(knownHosts, 'utf8'), before, 'known_hosts unchanged')
  })

  it('with the verified fingerprint: the key is recorded, the config written 0644 and ha config check accepts it', async (t) => {
    const {args, config, knownHosts, print, sshd} = await setUp(t)
    const r = ha([...args, '--peer-host-key', print, '--json'])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.deepEqual(
      r.json!.result.host_keys.map((k: {host: string; how: string}) => [k.host, k.how]),
      [['127.0.0.1', 'in known_hosts'], ['localhost', 'given as --peer-host-key']],
    )
    assert.equal(statSync(config).mode & 0o777, 0o644)
    assert.ok(readFileSync(knownHosts, 'utf8').includes(`[localhost]:${sshd.port} ${sshd.hostKeyLine}`))
    const check = ha(['config', 'check', '--config', config, '--json'])
    assert.equal(check.status, 0, check.stdout + check.stderr)
    assert.deepEqual(check.json!.result.service_ips, [{address: '198.18.1.10/24', interface: 'eth0'}])
    assert.match(readFileSync(config, 'utf8'), /host_key_policy: strict/)

    // Again: the key is known now, so no fingerprint is needed; the file exists, so --force is.
    const again = ha(args)
    assert.equal(again.status, 4)
    const forced = ha([...args, '--force', '--json'])
    assert.equal(forced.status, 0, forced.stdout + forced.stderr)
    assert.equal(forced.json!.result.replaced, true)
    assert.equal(forced.json!.result.host_keys[1].how, 'in known_hosts')
  })
})

describe('ha init at a terminal against a real sshd', {skip: missingPrerequisite(['root', 'sshd', 'tmux'])}, () => {
  it('flags answer their questions, the rest is asked with proposals; a bad answer is refused in place; the peer key is shown and confirmed', async (t) => {
    const sshd = await startSshd({t})
    const dir = tempDir(t)
    const knownHosts = join(dir, 'known_hosts')
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`)
    const print = execFileSync('ssh-keygen', ['-lf', '-'], {encoding: 'utf8', input: sshd.hostKeyLine}).split(' ')[1]
    const config = join(dir, 'ha.yaml')
    const term = haInTerminal(t, [
      'init', '--config', config, '--no-check', '--node', 'secondary', '--address', '127.0.0.1', '--ssh-user', 'root', '--ssh-port', String(sshd.port),
      '--identity-file', sshd.clientKey, '--known-hosts', knownHosts, '--storage', 'none', '--services', '',
    ])
    const answer = async (question: RegExp, text: string) => {
      await term.waitFor(question)
      term.type(text)
    }

    // --node, --address and the ssh answers came as flags: those questions are never shown.
    await answer(/This machine's hostname \(as secondary\)\? \(\S+\)/, 'ctl-b')
    await answer(/The primary's address \(ssh\)\?/, 'localhost')
    const shown = await term.waitFor(/Trust SHA256:\S+ as the primary's host key/)
    assert.ok(shown.includes(`The primary (localhost) presents the host key ${print}, which ${knownHosts} does not know.`), shown)
    assert.doesNotMatch(shown, /Which node|ssh port|private key/)
    term.type('y')
    await answer(/The primary's hostname\? \(\S+\)/, 'ctl-a')
    await answer(/The data directory on the shared storage\? \(\/var\/opt\/sun\/xvm\)/, join(dir, 'data'))
    await answer(/The product's version file\?/, '')
    await answer(/The service IP clients use, as address\/prefix\? \(empty: none\)/, '198.18.1.10/99')
    await term.waitFor(/\/99 is not a prefix length \(1-32\)/)
    term.keys('C-u')
    term.type('198.18.1.10/24')
    await answer(/The interface the service IP goes on\?/, 'eth0')
    await answer(/How both nodes configure their addresses at boot: ifupdown, networkmanager, ifcfg or netplan\? \((ifupdown|networkmanager|ifcfg|netplan)\)/, 'wicked')
    await term.waitFor(/must be ifupdown \(\/etc\/network\/interfaces\), networkmanager/)
    term.keys('C-u')
    term.type('networkmanager')
    await answer(/Where archives go, inside the data directory\? \(\.ha\/backups\)/, '/srv/backups')
    await term.waitFor(/must be relative to data_dir/)
    term.keys('C-u')
    term.type('')
    assert.equal(await term.exitCode(), 0, term.screen())
    assert.match(term.screen(), /host key of the primary \(localhost\): SHA256:\S+, confirmed at the terminal/)
    const check = ha(['config', 'check', '--config', config, '--json'])
    assert.equal(check.status, 0, check.stdout + check.stderr)
    assert.deepEqual(check.json!.result.nodes.map((n: {hostname: string}) => n.hostname), ['ctl-a', 'ctl-b'])
    assert.deepEqual(check.json!.result.boot_config, {files: '/etc/NetworkManager/system-connections/*.nmconnection', kind: 'networkmanager'})
  })

  it('an existing configuration: asked before it is replaced; "no" leaves it as it was', async (t) => {
    const config = join(tempDir(t), 'ha.yaml')
    writeFileSync(config, 'data_dir: /srv/mine\n')
    const term = haInTerminal(t, ['init', '--config', config])
    await term.waitFor(/Replace the existing configuration .*ha\.yaml\? \(y\/N\)/)
    term.type('n')
    assert.equal(await term.exitCode(), 1)
    assert.match(term.screen(), /not confirmed/)
    assert.equal(readFileSync(config, 'utf8'), 'data_dir: /srv/mine\n')
  })
})

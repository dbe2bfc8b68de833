import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {ha, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd, type TestSshd} from '../helpers/sshd.js'
import {haInTerminal} from '../helpers/tmux.js'

/**
 * ha init's ssh test failing does not throw the answers away: they are written as a draft beside
 * the configuration (never in its place), with the one command that finishes once ssh works; and
 * --no-ssh-test writes the configuration without the test, saying what it did not verify. The
 * built CLI against a real sshd on 127.0.0.1; the node that does not answer is 127.0.0.2, where
 * nothing listens.
 */
const draftOf = (config: string) => `${config}.draft`

/** The finish command's argv from the draft's header (the words are plain or single-quoted). */
function finishArgs(draft: string): string[] {
  const line = readFileSync(draft, 'utf8').split('\n').find((l) => l.startsWith('# When ssh works, finish with: '))
  assert.ok(line, `the draft says how to finish:\n${readFileSync(draft, 'utf8')}`)
  const words = [...line.slice('# When ssh works, finish with: '.length).matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2])
  assert.deepEqual(words.slice(0, 2), ['ha', 'init'])
  return words.slice(1)
}

async function setUp(t: Parameters<typeof tempDir>[0]) {
  const sshd = await startSshd({t})
  const dir = tempDir(t)
  const knownHosts = join(dir, 'known_hosts')
  writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`)
  mkdirSync(join(dir, 'data'))
  const config = join(dir, 'etc/ha/ha.yaml')
  return {config, dir, knownHosts, sshd}
}

/** ha init from a script: this machine is the sshd at 127.0.0.1, the peer is 127.0.0.2 (nothing listens). */
function scripted(s: {config: string; dir: string; knownHosts: string; sshd: TestSshd}, ...more: string[]) {
  return [
    'init', '--yes', '--config', s.config, '--address', '127.0.0.1', '--peer', '127.0.0.2', '--ssh-port', String(s.sshd.port),
    '--identity-file', s.sshd.clientKey, '--known-hosts', s.knownHosts, '--hostname', 'ctl-a', '--data-dir', join(s.dir, 'data'),
    '--storage', 'none', '--service-ip', '198.18.1.10/24', '--interface', 'eth0', '--services', '', ...more,
  ]
}

describe('ha init when the ssh test fails, from a script', {skip: missingPrerequisite(['root', 'sshd'])}, () => {
  it('the peer does not answer: exit 1 naming it, the answers kept in CONFIG.draft (ha config check judges it), the configuration not written, known_hosts unchanged', async (t) => {
    const s = await setUp(t)
    const before = readFileSync(s.knownHosts, 'utf8')

    const json = ha([...scripted(s, '--peer-hostname', 'ctl-b'), '--json'])
    assert.equal(json.status, 1, json.stdout + json.stderr)
    assert.ok(json.json?.error, json.stdout)
    assert.match(json.json.error.message, /^the secondary: cannot read the ssh host key of \[127\.0\.0\.2\]:\d+: ECONNREFUSED/)
    assert.ok(json.json.error.message.includes(`Your answers are kept in ${draftOf(s.config)} (a draft: ${s.config} was not written`), json.json.error.message)
    const details = (json.json.error as {details?: {draft: string; finish_argv: string[]}}).details!
    assert.equal(details.draft, draftOf(s.config))
    assert.ok(json.json.error.actions.some((a) => a.startsWith('then finish with (every answer given, only the ssh test is left): ha init --config ')), json.json.error.actions.join('\n'))
    assert.equal(existsSync(s.config), false, 'the configuration itself is not written')
    assert.equal(readFileSync(s.knownHosts, 'utf8'), before, 'known_hosts unchanged')

    const draft = readFileSync(draftOf(s.config), 'utf8')
    assert.match(draft, /^# DRAFT of .*ha\.yaml, kept by `ha init` .* because the ssh test failed/)
    for (const answer of ['hostname: ctl-a', 'hostname: ctl-b', 'address: 198.18.1.10/24', 'host: 127.0.0.2']) assert.ok(draft.includes(answer), `${answer} in the draft:\n${draft}`)
    const check = ha(['config', 'check', '--json', '--config', draftOf(s.config)])
    assert.equal(check.status, 0, check.stdout + check.stderr)
    assert.deepEqual(check.json!.result.nodes.map((n: {hostname: string}) => n.hostname), ['ctl-a', 'ctl-b'])
    // The finish command is every answer given: the same failure again, nothing asked, nothing more written.
    assert.deepEqual(details.finish_argv.slice(0, 4), ['ha', 'init', '--config', s.config])
    assert.ok(details.finish_argv.includes('--peer-hostname') && details.finish_argv.includes('ctl-b'))

    const human = ha(scripted(s, '--peer-hostname', 'ctl-b'))
    assert.equal(human.status, 1, human.stderr)
    assert.match(human.stderr, /^warning: the ssh test failed: the secondary: cannot read the ssh host key of \[127\.0\.0\.2\]/m)
    assert.match(human.stderr, /^Your answers are kept in .*ha\.yaml\.draft/m)
    assert.match(human.stderr, /→ then finish with \(every answer given, only the ssh test is left\): ha init --config \S+ha\.yaml --node primary --hostname ctl-a/)
    assert.match(human.stderr, /→ or write it without the ssh test: ha init .* --no-ssh-test$/m)
  })

  it('--yes without an answer only the ssh test could propose (the peer hostname): both said, no draft', async (t) => {
    const s = await setUp(t)
    const r = ha(scripted(s))
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, /the secondary: cannot read the ssh host key/)
    assert.match(r.stderr, /no draft of your answers could be made: ha init --yes: --peer-hostname is needed/)
    assert.deepEqual([existsSync(s.config), existsSync(draftOf(s.config))], [false, false])
  })

  it('the draft\'s place is a folder: the failure names it, nothing is written through it', async (t) => {
    const s = await setUp(t)
    mkdirSync(draftOf(s.config), {recursive: true})
    const r = ha(scripted(s, '--peer-hostname', 'ctl-b'))
    assert.equal(r.status, 1, r.stderr)
    assert.ok(r.stderr.includes(`ha init could not keep your answers in ${draftOf(s.config)}: it exists and is not a regular file`), r.stderr)
    assert.equal(existsSync(s.config), false)
    assert.deepEqual(readdirSync(draftOf(s.config)), [])
  })
})

describe('ha init --no-ssh-test', {skip: missingPrerequisite(['root', 'sshd'])}, () => {
  it('writes the configuration without reaching a node, says what it did not verify, runs no ha check; ha config check accepts the file', async (t) => {
    const s = await setUp(t)
    const before = readFileSync(s.knownHosts, 'utf8')
    const args = scripted(s, '--peer-hostname', 'ctl-b', '--no-ssh-test')
    const r = ha([...args, '--json'])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.equal(r.json!.result.ssh_test, 'skipped')
    assert.equal(r.json!.result.check, null, 'no ha check: it needs ssh')
    assert.deepEqual(r.json!.result.host_keys, [])
    assert.ok(r.json!.result.not_verified.some((v: string) => /host keys/.test(v)), r.json!.result.not_verified)
    assert.match(readFileSync(s.config, 'utf8'), /# Written with --no-ssh-test: host keys and logins were not verified/)
    assert.equal(readFileSync(s.knownHosts, 'utf8'), before, 'no host key read nor recorded')
    assert.equal(existsSync(draftOf(s.config)), false)
    const check = ha(['config', 'check', '--config', s.config])
    assert.equal(check.status, 0, check.stdout + check.stderr)

    const human = ha([...args, '--force'])
    assert.equal(human.status, 0, human.stderr)
    assert.match(human.stdout, /not verified \(--no-ssh-test\):\n {4}- the nodes' ssh host keys/)
  })

  it('with --peer-host-key (which only the ssh test can compare): exit 2 naming both flags, nothing written', async (t) => {
    const s = await setUp(t)
    const r = ha(scripted(s, '--peer-hostname', 'ctl-b', '--no-ssh-test', '--peer-host-key', `SHA256:${'A'.repeat(43)}`))
    assert.equal(r.status, 2, r.stderr)
    assert.match(r.stderr, /--peer-host-key.*--no-ssh-test/)
    assert.deepEqual([existsSync(s.config), existsSync(draftOf(s.config))], [false, false])
  })
})

describe('ha init at a terminal when the login is refused', {skip: missingPrerequisite(['root', 'sshd', 'tmux'])}, () => {
  it('says so at once, asks the rest, keeps every answer in the draft; once the key is authorized, the finish command writes the configuration and removes the draft', async (t) => {
    const s = await setUp(t)
    // A key the sshd does not authorize (yet): the login test fails after the host keys were settled.
    const key = join(s.dir, 'new_key')
    const pub = makeKey(key)
    const print = execFileSync('ssh-keygen', ['-lf', '-'], {encoding: 'utf8', input: s.sshd.hostKeyLine}).split(' ')[1]
    const term = haInTerminal(t, [
      'init', '--config', s.config, '--no-check', '--node', 'secondary', '--address', '127.0.0.1', '--ssh-port', String(s.sshd.port),
      '--identity-file', key, '--known-hosts', s.knownHosts, '--storage', 'none', '--services', '',
    ])
    const answer = async (question: RegExp, text: string) => {
      await term.waitFor(question)
      term.type(text)
    }

    await answer(/This machine's hostname \(as secondary\)\?/, 'ctl-b')
    await answer(/The primary's address \(ssh\)\?/, 'localhost')
    await answer(/The ssh user on both nodes\? \(root\)/, '')
    await term.waitFor(new RegExp(`Trust ${print.replaceAll(/[+/]/g, '\\$&')} as the primary's host key`))
    term.type('y')
    await term.waitFor(/warning: the ssh test failed: cannot connect to secondary \(root@127\.0\.0\.1:\d+\): authentication failed/)
    await answer(/The primary's hostname\?/, 'ctl-a')
    await answer(/The data directory on the shared storage\?/, join(s.dir, 'data'))
    await answer(/The product's version file\?/, '')
    await answer(/The service IP clients use, as address\/prefix\?/, '198.18.1.10/24')
    await answer(/The interface the service IP goes on\?/, 'eth0')
    await answer(/How both nodes configure their addresses at boot/, '')
    await answer(/Where archives go, inside the data directory\?/, '')
    assert.equal(await term.exitCode(), 1, term.screen())
    assert.match(term.screen(), /Your answers are kept in \S+ha\.yaml\.draft/)
    assert.equal(existsSync(s.config), false)
    const draft = readFileSync(draftOf(s.config), 'utf8')
    for (const typed of ['hostname: ctl-a', 'hostname: ctl-b', 'host: localhost', 'address: 198.18.1.10/24', 'interface: eth0']) assert.ok(draft.includes(typed), `${typed} in the draft:\n${draft}`)

    // Fixed where it failed; the finish command asks nothing (here without a terminal: --yes).
    appendFileSync(join(s.sshd.dir, 'authorized_keys'), `${pub}\n`)
    const finish = ha([...finishArgs(draftOf(s.config)), '--yes', '--json'])
    assert.equal(finish.status, 0, finish.stdout + finish.stderr)
    assert.equal(finish.json!.result.ssh_test, 'passed')
    assert.equal(existsSync(draftOf(s.config)), false, 'the draft is gone once the configuration is written')
    const written = readFileSync(s.config, 'utf8')
    for (const typed of ['hostname: ctl-a', 'hostname: ctl-b', 'address: 198.18.1.10/24']) assert.ok(written.includes(typed), `${typed} in the configuration`)
  })
})

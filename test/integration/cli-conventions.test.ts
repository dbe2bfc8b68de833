import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, readdirSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {join, relative} from 'node:path'
import {test} from 'node:test'

import {exitCodeMeaning} from '../../src/core/errors.js'
import {setup} from '../helpers/backup-fixture.js'
import {ha, haBin, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makePair, moveStorage} from '../helpers/restore-fixture.js'

/**
 * The habits every command shares, each as a user meets it: a flag without its value, help for
 * something that is not a command, the version and completion as JSON, global flags typed first,
 * stdout that cannot be written, SIGTERM, progress text in pipes, hints that work when followed,
 * and a run by someone who is not root.
 */
const stackTrace = /^\s+at .+\(.+:\d+:\d+\)$|node:internal|Node\.js v\d/m

/** The backup tests' controller root and config (backup-fixture.ts), with one backup made. */
function withBackup(t: Parameters<typeof tempDir>[0]) {
  const fixture = setup(t)
  const made = fixture.run('backup')
  assert.equal(made.status, 0, made.stderr)
  return fixture
}

test('a flag without its value is a usage error: exit 2, UsageError under --json, the help to read', () => {
  const screen = ha(['backup', 'list', '--config'])
  assert.equal(screen.status, 2, screen.stderr)
  assert.match(screen.stderr, /^error: Flag --config expects a value$/m)
  assert.match(screen.stderr, /→ ha backup list --help/)
  const json = ha(['backup', 'list', '--json', '--config'])
  assert.equal(json.status, 2)
  assert.equal(json.json?.error?.name, 'UsageError')
  assert.equal(json.json?.status, 2)
})

test('ha help for something that is not a command exits 2, on the screen as in JSON', () => {
  for (const args of [['help', 'nosuch'], ['nosuch', '--help']]) {
    const screen = ha(args)
    assert.equal(screen.status, 2, `${args.join(' ')}: ${screen.stderr}`)
    assert.match(screen.stderr, /"nosuch" is not a command/)
    assert.equal(screen.stdout, '')
  }

  const json = ha(['help', 'nosuch', '--json'])
  assert.equal(json.status, 2)
  assert.equal(json.json?.error?.name, 'UsageError')
})

test('ha -v --json and ha autocomplete --json print one envelope; completion writes nothing anywhere', (t) => {
  const home = tempDir(t)
  for (const flag of ['-v', '--version']) {
    const r = ha([flag, '--json'], {env: {HOME: home}})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.json?.result?.name, 'ha')
    assert.match(r.json?.result?.version, /^\d+\.\d+\.\d+/)
    assert.equal(r.json?.result?.node, process.version)
  }

  for (const shell of ['bash', 'zsh']) {
    const r = ha(['autocomplete', shell, '--json'], {env: {HOME: home, XDG_CACHE_HOME: join(home, '.cache')}})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stderr, '')
    assert.equal(r.json?.result?.shell, shell)
    assert.match(r.json?.result?.script, /backup/)
    assert.equal(r.json?.result?.setup, `source <(ha autocomplete ${shell})`)
    assert.doesNotMatch(r.stdout, /Enjoy|PowerShell|powershell/)
  }

  const none = ha(['autocomplete', '--json'], {env: {HOME: home, SHELL: '/bin/fish'}})
  assert.equal(none.status, 2)
  assert.match(none.json!.error!.message, /\$SHELL is "fish", and ha completes bash and zsh/)
  assert.deepEqual(readdirSync(home), [], 'nothing written in the home directory')
})

test('global flags typed before the command are taken as if typed after it', (t) => {
  const {config} = withBackup(t)
  const r = ha(['--json', '--no-color', '--config', config, 'backup', 'list', '--node', 'primary'])
  assert.equal(r.status, 0, r.stdout + r.stderr)
  assert.equal(r.json?.result?.backups.length, 1)
  const quiet = ha(['-q', `--config=${config}`, 'backup', 'list', '--node', 'primary'])
  assert.equal(quiet.status, 0, quiet.stderr)
  assert.equal(quiet.stdout, '')
  assert.equal(quiet.stderr, '')
})

test('stdout on a full disk or a closed pipe: one line on stderr (none for the pipe), never a stack trace, exit 1', async (t) => {
  const {config} = withBackup(t)
  const args = ['backup', 'list', '--config', config, '--node', 'primary']
  for (const extra of [[], ['--json']]) {
    for (const command of [[...args, ...extra], ['help', ...extra]]) {
      const r = spawnSync(process.execPath, [haBin, ...command], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
      assert.equal(r.status, 0, `${command.join(' ')}: ${r.stderr}`)
      const full = spawnSync('sh', ['-c', '"$@" > /dev/full', 'sh', process.execPath, haBin, ...command], {encoding: 'utf8'})
      assert.equal(full.status, 1, `${command.join(' ')} > /dev/full: ${full.stderr}`)
      assert.equal(full.stderr, 'ha: cannot write to stdout: ENOSPC: no space left on device; the output is incomplete\n')
    }
  }

  // A reader that reads nothing and goes away: ha's write meets EPIPE.
  const child = spawn(process.execPath, [haBin, 'help', 'failover'], {stdio: ['ignore', 'pipe', 'pipe']})
  child.stdout.destroy()
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const code = await new Promise((resolve) => child.on('close', resolve))
  assert.doesNotMatch(stderr, stackTrace)
  assert.ok(code === 0 || code === 1, `exit ${code}`)
})

/** A TCP port that accepts and never says a word: ssh to it waits for the server's greeting. */
async function silentPort(t: Parameters<typeof tempDir>[0]): Promise<number> {
  const held: Array<import('node:net').Socket> = []
  const server: Server = createServer((s) => held.push(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    for (const s of held) s.destroy()
    server.close()
  })
  return (server.address() as {port: number}).port
}

test('SIGTERM stops a command the way Ctrl-C does, and exits 143 (SIGINT: 130)', async (t) => {
  const dir = tempDir(t)
  const port = await silentPort(t)
  const key = join(dir, 'id')
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
  writeFileSync(join(dir, 'known_hosts'), '')
  const node = (n: string) => `  ${n}:\n    hostname: ctl-${n}\n    root: ${join(dir, n)}\n    ssh:\n      host: 127.0.0.1\n      port: ${port}\n      identity_file: ${key}\n      known_hosts: ${join(dir, 'known_hosts')}\n      connect_timeout: 30s\n`
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, `data_dir: /var/opt/sun/xvm\nnodes:\n${node('primary')}${node('secondary')}storage:\n  kind: none\n`)
  for (const [signal, expected] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    for (const json of [false, true]) {
      const child = spawn(process.execPath, [haBin, 'check', '--config', config, ...(json ? ['--json'] : [])], {env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      await new Promise((resolve) => setTimeout(resolve, 2000))
      child.kill(signal)
      const code = await new Promise((resolve) => child.on('close', resolve))
      assert.equal(code, expected, `${signal}: ${stdout}${stderr}`)
      assert.doesNotMatch(stderr + stdout, stackTrace)
      if (json) {
        const envelope = JSON.parse(stdout)
        assert.equal(envelope.status, expected)
        assert.match(envelope.error.message, signal === 'SIGTERM' ? /^terminated \(SIGTERM\)/ : /^interrupted/)
      } else {
        assert.match(stderr, signal === 'SIGTERM' ? /^error: terminated \(SIGTERM\)/m : /^error: interrupted/m)
      }
    }
  }

  assert.equal(exitCodeMeaning[143], 'terminated (SIGTERM): stopped the way Ctrl-C stops it, after cleanup')
})

test('progress lines ("collecting files…") stay off stderr when it is a pipe; the result and warnings remain', (t) => {
  const {run} = setup(t, {include: ['/etc/opt/site/license.key']})
  const r = run('backup')
  assert.equal(r.status, 3, r.stderr)
  assert.doesNotMatch(r.stderr, /collecting files|writing \d+ entries|verifying the new archive/)
  assert.match(r.stderr, /^warning: .*license\.key/m)
  assert.match(r.stdout, /^saved (\(partial\) )?\S+: \d+ entries/m)
})

test('hints work when followed: the dry run\'s next command and the undo keep --node and an absolute --config', (t) => {
  const pair = makePair(t)
  assert.equal(ha(['backup', '--config', pair.config, '--node', 'primary']).status, 0)
  moveStorage(pair)
  // From the config's folder, with a relative --config, as an admin in /etc/ha would type it.
  const here = relative(process.cwd(), pair.config)
  const dry = ha(['restore', '--dry-run', '--config', here, '--node', 'secondary'])
  assert.equal(dry.status, 0, dry.stderr)
  const next = /^next: (.+)$/m.exec(dry.stdout)?.[1]
  assert.ok(next, dry.stdout)
  assert.match(next, new RegExp(` --node secondary --config ${pair.config}$`))
  // Followed from another directory, it restores.
  const words = next.split(' ')
  const real = spawnSync(process.execPath, [haBin, ...words.slice(1), '--yes'], {cwd: '/', encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  assert.equal(real.status, 0, real.stderr)
  const undo = /^ {2}undo: (.+?) {3}\(journal in/m.exec(real.stdout)?.[1]
  assert.equal(undo, `ha restore --undo --node secondary --config ${pair.config}`)
  const undone = spawnSync(process.execPath, [haBin, ...undo.split(' ').slice(1), '--yes'], {cwd: '/', encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  assert.equal(undone.status, 0, undone.stderr)
  assert.match(undone.stdout, /^undone restore run/m)
})

test('ha backup --help\'s cron line names ha by its full path (cron\'s PATH does not find it)', () => {
  const r = ha(['backup', '--help'])
  const cron = r.stdout.split('\n').find((l) => /^\s+0 \* \* \* \* root /.test(l))
  assert.ok(cron, r.stdout)
  assert.match(cron, /root \/\S+\/ha backup --quiet --if-attached/)
})

test('not root: a command that needs root says so and what to type, before it reads anything; read-only ones still run', {skip: missingPrerequisite(['root'])}, (t) => {
  const {config} = withBackup(t)
  // CAP_DAC_READ_SEARCH only to reach bin/run.js in a clone under a 0700 folder (as CI may clone).
  const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search']
  for (const command of [['backup', 'list'], ['backup'], ['restore', '--dry-run'], ['unlock']]) {
    const r = ha([...command, '--config', config, '--node', 'primary'], {env: {HOME: '/nonexistent'}, prefix: asNobody})
    assert.equal(r.status, 2, `${command.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, new RegExp(`^error: ha ${command[0]}${command[1] && !command[1].startsWith('-') ? ` ${command[1]}` : ''} must run as root \\(it runs as uid 65534\\): `, 'm'))
    assert.match(r.stderr, /→ run it as root: sudo ha /)
    assert.doesNotMatch(r.stderr, /EACCES|warning/)
  }

  const check = ha(['config', 'check', '--config', config], {env: {HOME: '/nonexistent'}, prefix: asNobody})
  assert.equal(check.status, 0, check.stderr)
  assert.ok(existsSync(config))
})

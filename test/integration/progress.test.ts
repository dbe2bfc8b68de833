import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {createServer, type Socket} from 'node:net'
import {join} from 'node:path'
import {test} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {ha, haBin, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey} from '../helpers/sshd.js'
import {haInTerminal} from '../helpers/tmux.js'

/**
 * Progress as an admin sees it: on a terminal (tmux, screens read back; or util-linux `script`,
 * whose pty hands back every byte ha wrote) the long parts say what is happening and how far;
 * with --json, --quiet, TERM=dumb or without a terminal there is no progress text and no ESC byte.
 * Where a screen must be caught mid-work, ha stops itself there (HA_TEST_PAUSE_AT, a SIGSTOP only
 * tests ask for), so nothing depends on how fast this machine is.
 */
const MiB = 1024 * 1024
const progressText = /writing the archive:|verifying the archive:|extracting into staging:|verifying \S+(?: \(\d+ of \d+\))?: .* read|connecting to \w+ \(timeout|probing \w+ \(timeout/
type T = Parameters<typeof tempDir>[0]

function backupSetup(t: T, bulk: {bulkBytes: number; bulkFiles: number} = {bulkBytes: MiB, bulkFiles: 4}) {
  const dir = tempDir(t, 'ha-progress-')
  const root = join(dir, 'primary')
  makeControllerRoot(root, bulk)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({include: ['/etc/opt/sun/bulk'], primaryRoot: root}))
  return {backups: join(root, 'var/opt/sun/xvm/.ha/backups'), config, root}
}

/** A TCP listener on loopback that accepts and never says a word: an sshd that hangs. */
async function hungSshd(t: T): Promise<number> {
  const sockets: Socket[] = []
  const server = createServer((socket) => sockets.push(socket))
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as {port: number}).port)))
  t.after(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return port
}

/** primary over ssh to `port` (the hung listener), secondary this machine. */
function checkConfig(t: T, port: number, connectTimeout: string): string {
  const dir = tempDir(t, 'ha-progress-check-')
  for (const node of ['primary', 'secondary']) makeControllerRoot(join(dir, node), {hostname: node === 'primary' ? 'ctl-a' : 'ctl-b', sshKeys: false})
  const key = join(dir, 'id_ed25519')
  makeKey(key)
  writeFileSync(join(dir, 'known_hosts'), '')
  const path = join(dir, 'ha.yaml')
  writeFileSync(path, `data_dir: /var/opt/sun/xvm
nodes:
  primary:
    hostname: ctl-a
    root: ${join(dir, 'primary')}
    ssh:
      host: 127.0.0.1
      port: ${port}
      user: root
      identity_file: ${key}
      known_hosts: ${join(dir, 'known_hosts')}
      connect_timeout: ${connectTimeout}
  secondary:
    hostname: ctl-b
    root: ${join(dir, 'secondary')}
storage:
  kind: none
`)
  return path
}

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`

/** ha on a real terminal (script's pty): every byte it wrote there, stdout and stderr alike. */
function onTerminal(args: string[], env: Record<string, string>): {status: null | number; text: string; bytes: Buffer} {
  const command = ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, haBin, ...args].map(quote).join(' ')
  const r = spawnSync('script', ['-qfec', command, '/dev/null'], {env: {...process.env, NO_COLOR: ''}, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000})
  return {bytes: r.stdout, status: r.status, text: r.stdout.toString('utf8')}
}

/** The ha process (node running bin/run.js with `marker` among its arguments) once it has stopped itself. */
async function stoppedHa(marker: string): Promise<number> {
  for (let i = 0; i < 600; i++) {
    for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
        if (argv[0] !== process.execPath || argv[1] !== haBin || !argv.includes(marker)) continue
        if (readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] === 'T') return Number(pid)
      } catch {}
    }

    await sleep(100)
  }

  throw new Error(`no stopped ha process with ${marker} within 60 s`)
}

/** Waits until SIGINT is pending for a stopped process (the Ctrl-C tmux typed has arrived). */
async function sigintPending(pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const pending = [...status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].reduce((mask, m) => mask | BigInt(`0x${m[1]}`), 0n)
    if (pending & 2n) return
    await sleep(50)
  }

  throw new Error(`SIGINT never reached process ${pid}`)
}

test('ha backup at a terminal shows the bytes written of the known total, then leaves a clean line', {skip: missingPrerequisite(['tmux'])}, async (t) => {
  const {config} = backupSetup(t, {bulkBytes: 32 * MiB, bulkFiles: 16})
  const term = haInTerminal(t, ['backup', '--config', config, '--node', 'primary'], {HA_TEST_PAUSE_AT: 'writing-half'})
  const pid = await stoppedHa(config)
  // Half-way through the archive: the counter names the total of the saved files.
  const screen = await term.waitFor(/writing the archive: [\d.]+ of 32\.0 MiB \(\d+%\)/, 5000)
  assert.match(screen, /^writing \d+ entries to \S+\.tar\.gz$/m)
  process.kill(pid, 'SIGCONT')
  assert.equal(await term.exitCode(60_000), 0, term.screen())
  const end = term.screen()
  assert.match(end, /^saved \S+: \d+ entries, [\d.]+ MiB in/m)
  assert.match(end, /^verifying the new archive$/m)
  // Cleared when done: no counter is left on the screen, and no line carries one.
  assert.doesNotMatch(end, progressText)
  assert.doesNotMatch(end, / of [\d.]+ MiB/)
})

test('ha check at a terminal says it is connecting to the node whose sshd hangs, with the timeout, and clears it', {skip: missingPrerequisite(['tmux'])}, async (t) => {
  const config = checkConfig(t, await hungSshd(t), '4s')
  const term = haInTerminal(t, ['check', '--config', config])
  await term.waitFor(/^connecting to primary \(timeout 4s\)… \d+s/m)
  assert.equal(await term.exitCode(60_000), 3, term.screen())
  const end = term.screen()
  assert.match(end, /no SSH handshake within connect_timeout \(4s\)/)
  assert.doesNotMatch(end, progressText)
})

test('backup, verify and restore --dry-run: progress on a terminal; none with --json, --quiet, TERM=dumb or a pipe, and no ESC byte', (t) => {
  const {config} = backupSetup(t)
  const runs = [
    ['backup', '--config', config, '--node', 'primary'],
    ['backup', 'verify', '--config', config, '--node', 'primary'],
    ['restore', '--dry-run', '--config', config, '--node', 'primary'],
  ]
  assert.equal(ha(runs[0]).status, 0)
  for (const args of runs) {
    const what = args.slice(0, args.indexOf('--config')).join(' ')
    // The control: at a terminal (NO_COLOR, so every ESC is the progress line's) there is progress.
    const shown = onTerminal(args, {NO_COLOR: '1', TERM: 'xterm'})
    assert.equal(shown.status, 0, shown.text)
    assert.match(shown.text, progressText, what)
    assert.ok(shown.bytes.includes('\r\u001B[K'), `${what}: the line is erased when done`)

    for (const [name, extra, env] of [
      ['--json', ['--json'], {TERM: 'xterm'}],
      ['--quiet', ['--quiet'], {TERM: 'xterm'}],
      ['TERM=dumb', [], {TERM: 'dumb'}],
    ] as const) {
      const r = onTerminal([...args, ...extra], env)
      assert.equal(r.status, 0, `${what} ${name}: ${r.text}`)
      assert.doesNotMatch(r.text, progressText, `${what} ${name}`)
      assert.ok(!r.bytes.includes(0x1b), `${what} ${name}: an ESC byte in ${JSON.stringify(r.text)}`)
      if (name === '--quiet') assert.equal(r.text, '', `${what} --quiet prints nothing on success`)
    }

    // Piped, as cron and scripts run it, with a TERM that would allow it on a terminal.
    const piped = ha(args, {env: {NO_COLOR: '', TERM: 'xterm'}})
    assert.equal(piped.status, 0, piped.stderr)
    assert.doesNotMatch(piped.stdout + piped.stderr, progressText, `${what} piped`)
    assert.ok(!(piped.stdout + piped.stderr).includes('\u001B'), `${what} piped: no ESC byte`)
  }
})

test('ha check against a hung sshd: the wait is shown on a terminal, and not with --json, --quiet, TERM=dumb or a pipe', async (t) => {
  const config = checkConfig(t, await hungSshd(t), '2s')
  const shown = onTerminal(['check', '--config', config], {NO_COLOR: '1', TERM: 'xterm'})
  assert.equal(shown.status, 3, shown.text)
  assert.match(shown.text, /connecting to primary \(timeout 2s\)…/)
  for (const [name, extra, env] of [
    ['--json', ['--json'], {TERM: 'xterm'}],
    ['--quiet', ['--quiet'], {TERM: 'xterm'}],
    ['TERM=dumb', [], {TERM: 'dumb'}],
  ] as const) {
    const r = onTerminal(['check', '--config', config, ...extra], env)
    assert.equal(r.status, 3, `${name}: ${r.text}`)
    assert.doesNotMatch(r.text, progressText, name)
    assert.ok(!r.bytes.includes(0x1b), `${name}: an ESC byte in ${JSON.stringify(r.text)}`)
  }

  const piped = ha(['check', '--config', config], {env: {NO_COLOR: '', TERM: 'xterm'}})
  assert.equal(piped.status, 3, piped.stderr)
  assert.doesNotMatch(piped.stdout + piped.stderr, progressText)
  assert.ok(!(piped.stdout + piped.stderr).includes('\u001B'))
})

test('ha backup verify: the first Ctrl-C is ignored with a word why, the second stops it (exit 130, lock released, no record for the archive it stopped in)', {skip: missingPrerequisite(['tmux'])}, async (t) => {
  const {backups, config} = backupSetup(t)
  const args = ['--config', config, '--node', 'primary']
  assert.equal(ha(['backup', ...args]).status, 0)
  assert.equal(ha(['backup', ...args]).status, 0)
  const records = readdirSync(backups).filter((n) => n.endsWith('.verify.json')).sort().reverse()
  assert.equal(records.length, 2)
  const mtime = (name: string) => statSync(join(backups, name)).mtimeMs
  const before = records.map((r) => mtime(r))

  // ha stops itself before each archive (newest first): a Ctrl-C typed then is pending when it goes on.
  const term = haInTerminal(t, ['backup', 'verify', ...args], {HA_TEST_PAUSE_AT: 'verifying'})
  let pid = await stoppedHa(config)
  term.keys('C-c')
  await sigintPending(pid)
  process.kill(pid, 'SIGCONT')
  await term.waitFor(/^verify is read-only; press Ctrl-C again to stop$/m)
  // It went on: the first archive was verified and recorded, and it stopped at the second.
  pid = await stoppedHa(config)
  assert.doesNotMatch(term.screen(), /\[exit \d+\]/)
  assert.ok(mtime(records[0]) > before[0], 'the newest archive was verified after the first Ctrl-C')
  term.keys('C-c')
  await sigintPending(pid)
  process.kill(pid, 'SIGCONT')
  assert.equal(await term.exitCode(), 130, term.screen())
  assert.match(term.screen(), /interrupted: verify stopped/)
  assert.equal(mtime(records[1]), before[1], 'no record for the archive it stopped in')
  // The lock was released: the next verify runs at once.
  const again = ha(['backup', 'verify', ...args, '--json'])
  assert.equal(again.status, 0, again.stdout + again.stderr)
  assert.equal(again.json?.result.archives.length, 2)
})

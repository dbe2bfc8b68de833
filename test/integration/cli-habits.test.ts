import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {Config} from '@oclif/core'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {exitCodeMeaning} from '../../src/core/errors.js'
import {ha, haBin, repoRoot, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {terminal} from '../helpers/tmux.js'

/**
 * What a new user tries in the first minutes: -h, -v, a typo, tab completion, man ha, ha help
 * in an 80-column terminal.
 */
const pjson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'))
const manifest = JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8'))
const commandIds: string[] = Object.keys(manifest.commands).map((id) => id.replaceAll(':', ' ')).sort()

test('-h is --help and -v is --version, at the root and on a command', async () => {
  const root = ha(['--help'])
  assert.equal(root.status, 0)
  assert.equal(ha(['-h']).stdout, root.stdout)
  assert.match(ha(['restore', '-h']).stdout, /^USAGE\n {2}\$ ha restore /m)
  // ha answers the version before oclif loads (cli/entry.ts): the very line oclif would print.
  const {userAgent} = await Config.load(repoRoot)
  for (const args of [['-v'], ['--version'], ['--no-color', '--version'], ['--version', 'backup']]) {
    const r = ha(args)
    assert.equal(r.status, 0)
    assert.match(r.stdout, new RegExp(`^ha/${pjson.version.replaceAll('.', '\\.')} `))
    assert.equal(r.stdout, `${userAgent}\n`, args.join(' '))
    assert.equal(r.stderr, '')
  }
})

test('a typo suggests the command, exits 2 and never runs the guess with the flags given', (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({primaryRoot: root}))
  const backups = join(root, 'var/opt/sun/xvm/.ha/backups')
  const r = ha(['bakup', '--config', config, '--node', 'primary'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /^error: "ha bakup" is not a command; did you mean "ha backup"\?$/m)
  assert.match(r.stderr, /→ ha backup --help/)
  assert.equal(r.stdout, '')
  assert.ok(!existsSync(backups) || readdirSync(backups).length === 0, 'no backup was made')

  const json = ha(['restor', '--takeover', '--json'])
  assert.equal(json.status, 2)
  assert.equal(json.json?.error?.name, 'UsageError')
  assert.match(json.json!.error!.message, /did you mean "ha restore"\?/)
  assert.deepEqual(json.json?.error?.actions, ['ha restore --help', 'ha help lists every command'])

  const sub = ha(['backup', 'lst'])
  assert.equal(sub.status, 2)
  assert.match(sub.stderr, /did you mean "ha backup list"\?/)

  const extra = ha(['check', 'extra', '--config', config])
  assert.equal(extra.status, 2)
  assert.match(extra.stderr, /^error: ha check: unexpected argument "extra"$/m)

  // A command's own flag before the command is refused; the suggestion, followed, works.
  const first = ha(['--node', 'primary', '--json', 'backup', 'list', '--config', config])
  assert.equal(first.status, 2)
  assert.equal(first.json?.error?.message, `ha --node primary --json backup list --config ${config}: the command comes first, then its flags`)
  assert.deepEqual(first.json?.error?.actions, [`ha backup list --node primary --json --config ${config}`])
  const followed = ha(first.json!.error!.actions[0].split(' ').slice(1))
  assert.equal(followed.status, 0, followed.stdout)
  assert.deepEqual(followed.json?.result?.backups, [])

  const quiet = ha(['xyzzy', '--quiet'])
  assert.equal(quiet.status, 2)
  assert.equal(quiet.stderr, 'ha: "ha xyzzy" is not a command (ha help lists every command)\n')
})

test('ha help fits 80 columns and lists backup once, with its subcommands', () => {
  const help = ha(['help'], {env: {COLUMNS: ''}})
  assert.equal(help.status, 0)
  const long = help.stdout.split('\n').filter((l) => l.length > 80)
  assert.deepEqual(long, [], 'no line of the root help is wider than 80 columns')
  assert.equal(help.stdout.match(/^ {2}backup {2,}\S/gm)?.length, 1, 'backup appears once')
  assert.match(help.stdout, /^ {2}backup {2,}Save the controller state/m)
  assert.match(help.stdout, /^ {2}backup list +List backup archives/m)
  assert.doesNotMatch(help.stdout, /^TOPICS\n(?: .*\n)* {2}backup /m)
  for (const id of commandIds) {
    const own = ha([...id.split(' '), '--help'], {env: {COLUMNS: ''}})
    assert.equal(own.status, 0, id)
    // A usage line may carry one long token (a file path in an example); prose must wrap.
    const wide = own.stdout.split('\n').filter((l) => l.length > 80 && l.trim().includes(' '))
    assert.deepEqual(wide, [], `ha ${id} --help fits 80 columns`)
  }
})

test('the man page is built from the commands: every command and flag, the exit codes; it renders without warnings', () => {
  const page = join(repoRoot, 'man/ha.1')
  assert.equal(pjson.man, './man/ha.1')
  assert.ok(pjson.files.includes('man'), 'the man page is installed with the package')
  const check = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', page], {encoding: 'utf8'})
  assert.equal(check.status, 0)
  assert.equal(check.stderr, '', 'groff has no warnings')
  // Very wide, so no word is hyphenated across lines; then compared with spaces collapsed.
  const text = spawnSync('man', ['-l', page], {encoding: 'utf8', env: {...process.env, MANWIDTH: '1000'}}).stdout.replaceAll(/.\u0008/g, '')
  // Hidden commands (Pacemaker's ha cluster agent) are not an admin's reference; their own doc pages say them.
  const listed = (Object.values(manifest.commands) as Array<{hidden?: boolean; id: string}>).filter((c) => !c.hidden).map((c) => c.id.replaceAll(':', ' '))
  for (const id of listed) assert.match(text, new RegExp(`^ {3}ha ${id}$`, 'm'), `man ha has ha ${id}`)
  const flat = text.replaceAll(/\s+/g, ' ')
  for (const command of Object.values(manifest.commands) as Array<{flags: Record<string, {name: string}>}>) {
    for (const name of Object.keys(command.flags)) assert.ok(flat.includes(`--${name}`), `man ha documents --${name}`)
  }

  for (const [code, meaning] of Object.entries(exitCodeMeaning)) {
    assert.ok(flat.includes(` ${code} ${meaning} `), `man ha explains exit ${code}: ${meaning}`)
  }
})

describe('tab completion in a real shell', {skip: missingPrerequisite(['tmux'])}, () => {
  /** A shell with `ha` on its PATH, HOME and the completion cache in a temp dir. */
  function shellWithHa(t: Parameters<typeof tempDir>[0], shell: string[]) {
    const home = tempDir(t)
    mkdirSync(join(home, 'bin'))
    symlinkSync(haBin, join(home, 'bin/ha'))
    const env = {HOME: home, NO_COLOR: '1', PATH: `${join(home, 'bin')}:${process.env.PATH}`, XDG_CACHE_HOME: join(home, '.cache')}
    // What `ha autocomplete --help` tells the admin to put in ~/.bashrc or ~/.zshrc.
    const script = spawnSync(process.execPath, [haBin, 'autocomplete', shell[0]], {encoding: 'utf8', env: {...process.env, ...env}})
    assert.equal(script.status, 0, script.stderr)
    assert.deepEqual(readdirSync(home), ['bin'], 'asking for the script writes nothing (no cache in the home directory)')
    const term = terminal(t, shell.join(' '), env)
    t.after(() => assert.equal(existsSync(join(home, '.cache')), false, 'completing writes no cache either'))
    return {setup: `source <(ha autocomplete ${shell[0]})`, term}
  }

  test('bash completes commands, subcommands and flags', async (t) => {
    const {setup, term} = shellWithHa(t, ['bash', '--norc', '--noprofile'])
    term.type(`PS1='$ '; ${setup}`)
    term.type('clear')
    await term.waitFor(/^\$ $/m)
    term.type('ha bac', false)
    term.keys('Tab')
    await term.waitFor(/^\$ ha backup $/m)
    term.type('ve', false)
    term.keys('Tab')
    await term.waitFor(/^\$ ha backup verify $/m)
    term.keys('C-u')
    term.type('ha restore --tak', false)
    term.keys('Tab')
    await term.waitFor(/^\$ ha restore --takeover $/m)
  })

  test('zsh completes commands, subcommands and flags', {skip: existsSync('/usr/bin/zsh') ? undefined : 'needs zsh (apt-get install zsh)'}, async (t) => {
    const {setup, term} = shellWithHa(t, ['zsh', '-f'])
    term.type(`PS1='%% '; ${setup}`)
    term.type('clear')
    await term.waitFor(/^% $/m)
    term.type('ha rest', false)
    term.keys('Tab')
    await term.waitFor(/^% ha restore $/m)
    term.keys('C-u')
    term.type('ha backup ver', false)
    term.keys('Tab')
    await term.waitFor(/^% ha backup verify $/m)
  })
})

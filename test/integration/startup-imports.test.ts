import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'
import {fileURLToPath} from 'node:url'

import {haBin, repoRoot, tempDir} from '../helpers/cli.js'

/**
 * What one start of ha loads, per command (issue 19: cron's hourly backup, every remote ha of a
 * failover and a Pacemaker monitor every few seconds pay for each module). Each command below
 * names the files of ha and the packages it may load; a test fails when the command loads
 * anything else, e.g. ha --version loading oclif, or ha help loading the YAML parser, ssh2, tar
 * or @inquirer/prompts. A command that needs a new module adds it here, in sight of a reviewer.
 * Time is not asserted (bench/startup.mjs measures it); only what is loaded.
 *
 * The trace: test/helpers/trace-imports (every URL import resolves, and every file in require's
 * cache at exit, where @oclif/core and its dependencies load).
 */

/** The --version path: answered before oclif loads (cli/entry.ts). */
const versionFiles = [
  'bin/run.js',
  'dist/cli/argv.js',
  'dist/cli/as-oclif.js',
  'dist/cli/compile-cache.js',
  'dist/cli/entry.js',
  'dist/cli/output/progress.js',
  'dist/cli/output/reporter.js',
  'dist/cli/output/stdout-guard.js',
  'dist/cli/signals.js',
  'dist/core/colors.js',
  'dist/core/errors.js',
  // The reporter's --json writer (JSON text in pieces: restore's envelope lists every file).
  'dist/core/json-pieces.js',
  'dist/core/version.js',
]

/** What @oclif/core loads to run any command or print any help page (its own dependencies). */
const oclifPackages = [
  '@oclif/core',
  'ansi-escapes',
  'ansi-regex',
  'ansi-styles',
  'ansis',
  'balanced-match',
  'brace-expansion',
  'clean-stack',
  'cli-spinners',
  'debug',
  'ejs',
  'emoji-regex',
  'escape-string-regexp',
  'fdir',
  'get-package-type',
  'has-flag',
  'indent-string',
  'is-docker',
  'is-fullwidth-code-point',
  'is-inside-container',
  'is-wsl',
  'lilconfig',
  'minimatch',
  'ms',
  'picomatch',
  'powershell-utils',
  'string-width',
  'strip-ansi',
  'supports-color',
  'tinyglobby',
  'widest-line',
  'wordwrap',
  'wrap-ansi',
  'wsl-utils',
]

/** A help page (ha help, ha --help, ha backup --help): read from the build's pages, no oclif (cli/help-pages.ts). */
const helpPageFiles = [...versionFiles, 'dist/cli/help-pages.js']

/** A command ha runs without oclif (cli/direct.ts): the frame it runs in, and the config path. */
const directFiles = [...helpPageFiles, 'dist/cli/command-frame.js', 'dist/cli/direct.js', 'dist/config/path.js']

/** Any command through oclif: what ha tries first, the base command, oclif's parts (not the config reader). */
const commandFiles = [...directFiles, 'dist/cli/help.js', 'dist/cli/base-command.js', 'dist/cli/oclif.js']

const configCheckFiles = [
  ...directFiles,
  'dist/backup/manifest-spec.js',
  'dist/check/config-check.js',
  'dist/check/config-usable.js',
  'dist/check/guest-config.js',
  'dist/guests/affinity.js',
  'dist/config/duration.js',
  'dist/config/guarded-read.js',
  'dist/config/load.js',
  'dist/config/needs.js',
  'dist/config/schema.js',
  'dist/drivers/boot-config/detect.js',
  'dist/drivers/boot-config/driver.js',
  'dist/drivers/boot-config/edits.js',
  'dist/drivers/boot-config/ifcfg.js',
  'dist/drivers/boot-config/ifupdown.js',
  'dist/drivers/boot-config/index.js',
  'dist/drivers/boot-config/listing.js',
  'dist/drivers/boot-config/netplan.js',
  'dist/drivers/boot-config/networkmanager.js',
  'dist/drivers/storage/fstab.js',
  'dist/drivers/storage/index.js',
  'dist/drivers/storage/manual.js',
  'dist/drivers/storage/mount.js',
  'dist/drivers/storage/none.js',
  'dist/drivers/storage/zfs.js',
  'dist/fs/bounded-read.js',
  'dist/hosts/host.js',
  'dist/hosts/identity-file.js',
  // The YAML parser and zod, one file each (scripts/build-vendor.mjs), not from node_modules.
  'dist/vendor/yaml.js',
  'dist/vendor/zod.js',
]

const example = join(repoRoot, 'templates/ha.example.yaml')

const allowed: Array<{args: string[]; env?: NodeJS.ProcessEnv; files: string[]; packages: string[]}> = [
  {args: ['--version'], files: versionFiles, packages: []},
  {args: ['-v', '--json'], files: versionFiles, packages: []},
  {args: ['--help'], files: helpPageFiles, packages: []},
  {args: ['backup', '--help'], files: helpPageFiles, packages: []},
  {args: ['help'], files: helpPageFiles, packages: []},
  {args: ['help', 'config', 'check', '--json'], files: helpPageFiles, packages: []},
  // A help page oclif answers (ha's pages are 80 columns; another width is oclif's).
  {args: ['help', 'backup'], env: {OCLIF_COLUMNS: '100'}, files: [...commandFiles, 'dist/commands/help.js'], packages: oclifPackages},
  {args: ['config', 'check', '--config', example], files: configCheckFiles, packages: []},
]

const register = join(repoRoot, 'test/helpers/trace-imports/register.mjs')

/**
 * ha's own files (relative to the repository) and the packages (by name) one run loaded. Its
 * stdout and stderr are pipes, as under cron or a runbook; NO_COLOR is unset, so what keeps chalk
 * out is the pipe itself.
 */
function loadedBy(args: string[], trace: string, extra: NodeJS.ProcessEnv = {}, status = 0): {files: string[]; packages: string[]} {
  const env: NodeJS.ProcessEnv = {...process.env, ...extra, HA_TRACE_IMPORTS: trace, TERM: 'xterm'}
  // A test runner's own preloads (tsx) are not ha's.
  delete env.NODE_OPTIONS
  delete env.NO_COLOR
  const r = spawnSync(process.execPath, ['--import', register, haBin, ...args], {encoding: 'utf8', env})
  assert.equal(r.status, status, `ha ${args.join(' ')}: ${r.stderr}`)
  return traced(trace)
}

/** What a run traced (see loadedBy). */
function traced(trace: string): {files: string[]; packages: string[]} {
  const files = new Set<string>()
  const packages = new Set<string>()
  for (const url of readFileSync(trace, 'utf8').split('\n')) {
    if (!url.startsWith('file:')) continue
    const path = fileURLToPath(url)
    const inModules = path.lastIndexOf('/node_modules/')
    if (inModules !== -1) {
      const [scope, name] = path.slice(inModules + '/node_modules/'.length).split('/')
      packages.add(scope.startsWith('@') ? `${scope}/${name}` : scope)
    } else if (path.startsWith(`${repoRoot}/`) && !path.includes('/test/helpers/')) {
      files.add(path.slice(repoRoot.length + 1))
    }
  }

  return {files: [...files].sort(), packages: [...packages].sort()}
}

for (const {args, env, files, packages} of allowed) {
  test(`ha ${args.join(' ').replace(example, 'EXAMPLE')}${env ? ` (${Object.keys(env).join(', ')})` : ''} loads only what it uses`, (t) => {
    const loaded = loadedBy(args, join(tempDir(t), 'trace'), env)
    assert.ok(loaded.files.includes('dist/cli/entry.js'), 'the trace saw the CLI load')
    assert.deepEqual(
      loaded.files.filter((f) => !files.includes(f)),
      [],
      'files of ha this command loads but is not allowed to (add one here only if the command needs it)',
    )
    assert.deepEqual(
      loaded.packages.filter((p) => !packages.includes(p)),
      [],
      'packages this command loads but is not allowed to (add one here only if the command needs it)',
    )
  })
}

test('the trace sees a package a command imports inside run() and one @oclif/core requires', (t) => {
  // The allowlists above are only as good as the trace: ha config check imports its checker (and
  // so the YAML parser) inside its body; oclif's help formatter requires wrap-ansi, which requires
  // ansi-styles, through require() alone.
  const loaded = loadedBy(['config', 'check', '--config', example], join(tempDir(t), 'trace'))
  assert.ok(loaded.files.includes('dist/vendor/yaml.js'), 'an import() inside run() is seen')
  const help = loadedBy(['help', 'backup'], join(tempDir(t), 'help'), {OCLIF_COLUMNS: '100'})
  assert.ok(help.packages.includes('ansi-styles'), 'a require() inside @oclif/core is seen')
})

test("Pacemaker's monitor (ha cluster agent monitor, as ocf/controller runs it) loads no part of oclif", (t) => {
  const loaded = loadedBy(['cluster', 'agent', 'monitor', '--config', example, '--node', 'primary'], join(tempDir(t), 'trace'), {}, 6)
  assert.ok(loaded.files.includes('dist/cluster/agent.js'), 'the agent ran')
  assert.deepEqual(
    loaded.packages.filter((p) => oclifPackages.includes(p) && !['debug', 'ms', 'has-flag', 'supports-color'].includes(p)),
    [],
    'oclif or a package only oclif uses',
  )
})

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`

/** ha on a terminal (util-linux script's pty, as test/integration/progress.test.ts): what it loaded and wrote there. */
function onTerminal(args: string[], env: Record<string, string>, trace: string): {bytes: string; packages: string[]} {
  const command = ['env', '-u', 'NODE_OPTIONS', ...Object.entries({...env, HA_TRACE_IMPORTS: trace}).map(([k, v]) => `${k}=${v}`), process.execPath, '--import', register, haBin, ...args]
  const r = spawnSync('script', ['-qfec', command.map(quote).join(' '), '/dev/null'], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000})
  assert.equal(r.status, 0, `ha ${args.join(' ')} on a terminal: ${r.stdout}${r.stderr}`)
  return {bytes: r.stdout, packages: traced(trace).packages}
}

test('chalk loads only for a run that colours: on a terminal, not under NO_COLOR, not for --version', (t) => {
  const green = '\u001B[32mvalid:\u001B[39m'
  const colour = onTerminal(['config', 'check', '--config', example], {NO_COLOR: '', TERM: 'xterm'}, join(tempDir(t), 'colour'))
  assert.ok(colour.bytes.includes(green), `coloured on a terminal: ${JSON.stringify(colour.bytes)}`)
  assert.ok(colour.packages.includes('chalk'), 'chalk is what colours')
  const noColor = onTerminal(['config', 'check', '--config', example], {NO_COLOR: '1', TERM: 'xterm'}, join(tempDir(t), 'no-color'))
  assert.match(noColor.bytes, /^valid: /m)
  assert.ok(!noColor.bytes.includes('\u001B['), `NO_COLOR: no colour at all: ${JSON.stringify(noColor.bytes)}`)
  assert.ok(!noColor.packages.includes('chalk'), 'NO_COLOR: chalk is not loaded')
  const version = onTerminal(['--version'], {NO_COLOR: '', TERM: 'xterm'}, join(tempDir(t), 'version'))
  assert.match(version.bytes, /^ha\/\S+ \S+ node-v/m)
  assert.deepEqual(version.packages, [], 'ha --version on a terminal loads no package, chalk included')
})

import assert from 'node:assert/strict'
import {chmodSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {haRun, repoRoot, tempDir} from '../helpers/cli.js'

/**
 * `ha config check` and `ha cluster agent ACTION` run without oclif (cli/direct.ts) when their
 * command line is a plain one; everything else is oclif's. Whichever runs a line, the admin, the
 * script and Pacemaker must see the same: stdout, stderr and the exit code, byte for byte.
 * OCLIF_COLUMNS is a run ha leaves to oclif (cli/as-oclif.ts), so it gives oclif's answer beside
 * ha's; startup-imports.test.ts shows the plain lines do not load oclif.
 */

interface Run {
  status: null | number
  stderr: string
  stdout: string
}

const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> => haRun(args, {NO_COLOR: '1', ...env})

async function sameBothWays(lines: Array<{args: string[]; env?: NodeJS.ProcessEnv; status: number}>): Promise<void> {
  for (const {args, env, status} of lines) {
    const [direct, oclif] = await Promise.all([run(args, env), run(args, {...env, OCLIF_COLUMNS: '80'})])
    assert.deepEqual(direct, oclif, `ha ${args.join(' ')}`)
    assert.equal(direct.status, status, `ha ${args.join(' ')}: ${direct.stderr}`)
  }
}

const example = join(repoRoot, 'templates/ha.example.yaml')

test('ha config check: valid, invalid, missing, warned; every output mode; usage errors: as oclif runs it', async (t) => {
  const dir = tempDir(t)
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, readFileSync(example, 'utf8').replace('198.18.1.10/24', '999.18.1.10/99'))
  chmodSync(bad, 0o600)
  const notYaml = join(dir, 'not.yaml')
  writeFileSync(notYaml, 'nodes: [unclosed\n')
  chmodSync(notYaml, 0o600)
  const missing = join(dir, 'missing.yaml')
  await sameBothWays([
    {args: ['config', 'check', '--config', example], status: 0},
    {args: ['config', 'check', `--config=${example}`, '--json'], status: 0},
    {args: ['--json', 'config', 'check', '--config', example], status: 0},
    {args: ['config', 'check', '--config', example, '-q'], status: 0},
    {args: ['config', 'check', '--config', example, '--no-color', '--quiet'], status: 0},
    {args: ['config', 'check'], env: {HA_CONFIG: example}, status: 0},
    {args: ['config', 'check', '--config', bad], status: 2},
    {args: ['config', 'check', '--config', bad, '--json'], status: 2},
    {args: ['config', 'check', '--config', bad, '--quiet'], status: 2},
    {args: ['config', 'check', '--config', notYaml, '--json'], status: 2},
    {args: ['config', 'check', '--config', missing], status: 2},
    {args: ['config', 'check', '--config', missing, '--json'], status: 2},
    // What ha leaves to oclif, and what oclif refuses: the same either way.
    {args: ['config', 'check', '--config', example, 'extra'], status: 2},
    {args: ['config', 'check', '--bogus'], status: 2},
    {args: ['config', 'check', '--config'], status: 2},
    {args: ['config', 'check', '--json', '--json', '--config', example], status: 0},
  ])
})

test('ha cluster agent: what Pacemaker calls, and what it must never get wrong, as oclif runs it', async (t) => {
  const dir = tempDir(t)
  const missing = join(dir, 'missing.yaml')
  await sameBothWays([
    {args: ['cluster', 'agent', 'meta-data'], status: 0},
    {args: ['cluster', 'agent', 'monitor', '--config', missing], status: 5},
    {args: ['cluster', 'agent', 'monitor', '--config', missing, '--node', 'primary'], status: 5},
    {args: ['cluster', 'agent', 'validate-all', '--config', example], status: 6},
    {args: ['cluster', 'agent', 'promote', '--config', example], status: 3},
    {args: ['cluster', 'agent'], status: 2},
    {args: ['cluster', 'agent', '', '--config', example], status: 2},
    {args: ['cluster', 'agent', 'monitor', '--config', example, '--node', 'tertiary'], status: 2},
    {args: ['cluster', 'agent', 'monitor', 'start', '--config', example], status: 2},
  ])
})

test('what ha runs without oclif takes exactly the flags and arguments each command declares, and needs no root', async () => {
  const {directCommands} = await import('../../src/cli/direct.js')
  type Flag = {char?: string; multiple?: boolean; options?: string[]; type: string}
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8')) as {
    commands: Record<string, {args: Record<string, unknown>; flags: Record<string, Flag>; strict?: boolean}>
  }
  assert.deepEqual(Object.keys(directCommands).sort(), ['cluster agent', 'config check'])
  for (const [id, direct] of Object.entries(directCommands)) {
    const declared = manifest.commands[id.replace(' ', ':')]
    const flags = Object.entries(declared.flags)
    const valued = Object.fromEntries(flags.filter(([, f]) => f.type === 'option').map(([name, f]) => [name, f.options]))
    assert.deepEqual({...direct.flags, config: undefined}, valued, `${id}: the flags that take a value, and the values each allows`)
    assert.ok(flags.every(([, f]) => !f.multiple), `${id}: no flag given more than once`)
    const booleans = flags.filter(([, f]) => f.type === 'boolean').map(([name, f]) => `${name}${f.char ? `/-${f.char}` : ''}`)
    assert.deepEqual(booleans.sort(), ['json', 'no-color', 'quiet/-q'], `${id}: only the global switches`)
    assert.equal(Object.keys(declared.args).length, direct.args, `${id}: its arguments`)
    assert.notEqual(declared.strict, false, `${id}: oclif refuses extra arguments`)
    const {default: command} = (await import(`../../src/commands/${id.replace(' ', '/')}.js`)) as {default: {needsRoot?: string}}
    assert.equal(command.needsRoot, undefined, `${id}: a command that needs root is refused by HaCommand, which the direct run skips`)
  }
})

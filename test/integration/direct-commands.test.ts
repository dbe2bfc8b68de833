import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {chmodSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {haBin, repoRoot, tempDir} from '../helpers/cli.js'

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

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const base: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1', ...env}
  delete base.NODE_OPTIONS
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [haBin, ...args], {env: base, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (status) => resolve({status, stderr, stdout}))
  })
}

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

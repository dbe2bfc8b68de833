import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmodSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {ha, repoRoot, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * ocf:ha:controller as the package ships it (ocf/controller), outside any cluster: its meta-data
 * is valid OCF (xmllint against resource-agents' ra-api-1.dtd, as ocf-tester checks it) and the
 * same text ha prints; where ha is missing it answers as an OCF agent must (stop done, monitor
 * stopped, start "not installed"); a config that cannot run under Pacemaker is "not configured"
 * (6) or, absent, "not installed" (5), and nothing runs. The agent at work is test/lab/cluster-agent.
 */
const script = join(repoRoot, 'ocf/controller')
const skipLint = missingPrerequisite(['ocf-tester'])

function agent(action: string, env: Record<string, string> = {}) {
  return spawnSync('sh', [script, action], {encoding: 'utf8', env: {PATH: '/usr/bin:/bin', ...env}})
}

test('meta-data: the script answers it itself, with ha\'s own text, valid against the OCF DTD', {skip: skipLint}, () => {
  assert.equal(statSync(script).mode & 0o777, 0o755, 'installed as is: 0755')
  const own = agent('meta-data', {OCF_RESKEY_ha: '/nonexistent/ha'})
  assert.equal(own.status, 0, own.stderr)
  assert.equal(own.stdout, ha(['cluster', 'agent', 'meta-data']).stdout, 'ocf/controller carries ha cluster agent meta-data\'s text')
  const lint = spawnSync('xmllint', ['--noout', '--valid', '-'], {cwd: '/usr/share/resource-agents', encoding: 'utf8', input: own.stdout})
  assert.equal(lint.status, 0, lint.stderr)
  for (const parameter of ['config', 'node', 'ha']) assert.match(own.stdout, new RegExp(`<parameter name="${parameter}"`))
  for (const depth of ['0', '10', '20']) assert.match(own.stdout, new RegExp(`<action name="monitor" depth="${depth}"`))
})

test('without ha on the node: stop is done (0), monitor says stopped (7), start and validate-all say not installed (5), unknown actions 3', () => {
  const env = {OCF_RESKEY_ha: '/nonexistent/ha'}
  const codes = Object.fromEntries(['stop', 'monitor', 'start', 'validate-all', 'migrate_to', ''].map((a) => [a || '(none)', agent(a, env).status]))
  assert.deepEqual(codes, {'(none)': 2, migrate_to: 3, monitor: 7, start: 5, stop: 0, 'validate-all': 5})
  assert.match(agent('start', env).stderr, /\/nonexistent\/ha: not found on this node/)
})

test('ha cluster agent: a config missing is 5, one that cannot run under Pacemaker is 6, an unknown action 3; nothing is run', (t) => {
  const dir = tempDir(t)
  const marker = join(dir, 'ran')
  const example = readFileSync(join(repoRoot, 'templates/ha.example.yaml'), 'utf8')
    // Programs that would leave a trace, were anything run.
    .replaceAll('/etc/init.d/xvm', join(dir, 'xvm'))
  writeFileSync(join(dir, 'xvm'), `#!/bin/sh\necho "$@" >> ${marker}\nexit 3\n`)
  chmodSync(join(dir, 'xvm'), 0o755)
  const pacemaker = example.replace(/^ {2}mode: identity$/m, '  mode: service').replace(/^ {2}manager: none$/m, '  manager: pacemaker')
  const cases: Array<[string, string | undefined, string, number, RegExp]> = [
    ['no config file', undefined, 'monitor', 5, /no configuration here/],
    ['manager none', example.replace(/^ {2}mode: identity$/m, '  mode: service'), 'start', 6, /cluster\.manager is none: set it to pacemaker/],
    ['identity mode', example.replace(/^ {2}manager: none$/m, '  manager: pacemaker'), 'start', 6, /failover\.mode is identity/],
    ['invalid yaml', 'data_dir: [', 'monitor', 6, /invalid-yaml\.yaml:1: not valid YAML/],
    ['a hostname of no node', pacemaker, 'validate-all', 6, /matches neither nodes\.primary\.hostname nor nodes\.secondary\.hostname.*set the resource's node parameter/],
    ['an unknown action', pacemaker, 'promote', 3, /"promote" is not an action of this agent/],
  ]
  for (const [what, text, action, code, message] of cases) {
    const config = join(dir, `${what.replaceAll(' ', '-')}.yaml`)
    if (text !== undefined) writeFileSync(config, text)
    const r = ha(['cluster', 'agent', action, '--config', config])
    assert.equal(r.status, code, `${what}: ${r.stderr}`)
    assert.match(r.stderr, message, what)
  }

  assert.throws(() => readFileSync(marker), 'no service command ran')
})

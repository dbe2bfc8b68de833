import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {changedPaths, makePair, moveStorage, type Pair, secondarySnapshot, snapshot} from '../helpers/restore-fixture.js'

/**
 * Issue 17, item 4: while Pacemaker manages the pair (cluster.manager: pacemaker), what would
 * fight the cluster is refused before anything is read or changed: ha restore (but not its dry
 * run, nor under ha's resource agent, HA_OCF=1), ha rejoin, and the manual failover's --resume,
 * --abort and --fenced. Judged as an admin would: the exit code, the message naming the config's
 * cluster.manager and what to run instead, and both controller trees unchanged.
 */
const skip = missingPrerequisite(['root'])

const clusterBlock = [
  'failover: {mode: service}',
  'services: {start: [/etc/init.d/xvm, start], stop: [/etc/init.d/xvm, stop], status: [/etc/init.d/xvm, status]}',
  'cluster:',
  '  manager: pacemaker',
  '  group: ctl-service',
  '  fencing: [{id: fence-a, agent: fence_ipmilan}]',
  '',
].join('\n')

function clusterPair(t: Parameters<typeof makePair>[0]): Pair {
  const pair = makePair(t)
  const b = ha(['backup', '--config', pair.config, '--node', 'primary'])
  assert.equal(b.status, 0, b.stderr)
  moveStorage(pair)
  writeFileSync(pair.config, `${readFileSync(pair.config, 'utf8')}${clusterBlock}`)
  return pair
}

describe('refusals while Pacemaker manages the pair', {skip}, () => {
  test('ha restore is refused with the reason and the commands to use, and changes nothing on either node', (t) => {
    const pair = clusterPair(t)
    const before = {primary: snapshot(pair.primary), secondary: secondarySnapshot(pair)}
    for (const args of [[], ['--takeover'], ['--undo'], ['--resume']]) {
      const r = ha(['restore', ...args, '--yes', '--json', '--config', pair.config, '--node', 'secondary'])
      assert.equal(r.status, 2, `ha restore ${args.join(' ')}: ${r.stdout}${r.stderr}`)
      const error = r.json!.error!
      assert.match(error.message, new RegExp(`^ha restore is refused: ${pair.config} has cluster\\.manager: pacemaker, and Pacemaker starts and stops the service`))
      assert.ok(error.actions.some((a) => a.includes('ha failover') && a.includes('crm_resource --move --resource ctl-service')), error.actions.join('\n'))
      assert.ok(error.actions.some((a) => a.includes('crm_resource --restart --resource ctl-service')), error.actions.join('\n'))
    }

    // At a terminal's stderr too: the message, then each thing to do.
    const plain = ha(['restore', '--yes', '--config', pair.config, '--node', 'secondary'])
    assert.equal(plain.status, 2)
    assert.match(plain.stderr, /cluster\.manager: pacemaker/)
    assert.match(plain.stderr, /pcs resource restart ctl-service/)
    assert.deepEqual(changedPaths(before.secondary, secondarySnapshot(pair)), [], 'the secondary is untouched')
    assert.deepEqual(changedPaths(before.primary, snapshot(pair.primary)), [], 'the primary is untouched')
  })

  test('ha restore --dry-run still shows the plan; under the resource agent (HA_OCF=1) the restore runs', (t) => {
    const pair = clusterPair(t)
    const before = secondarySnapshot(pair)
    const dry = ha(['restore', '--dry-run', '--json', '--config', pair.config, '--node', 'secondary'])
    assert.equal(dry.status, 0, dry.stdout + dry.stderr)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [], 'a dry run changes nothing')
    const agent = ha(['restore', '--yes', '--json', '--config', pair.config, '--node', 'secondary'], {env: {HA_OCF: '1'}})
    assert.equal(agent.status, 0, agent.stdout + agent.stderr)
    assert.equal(readFileSync(join(pair.secondary, 'etc/opt/sun/xvm/satellite.conf'), 'utf8'), 'controller=ctl-a\nport=8443\n')
    // Any other value is not the agent.
    const other = ha(['restore', '--undo', '--yes', '--json', '--config', pair.config, '--node', 'secondary'], {env: {HA_OCF: 'yes'}})
    assert.equal(other.status, 2, other.stdout)
  })

  test('ha rejoin, ha failover --resume, --abort and --fenced are refused and name what to run instead', (t) => {
    const pair = clusterPair(t)
    const before = {primary: snapshot(pair.primary), secondary: secondarySnapshot(pair)}
    const rejoin = ha(['rejoin', 'secondary', '--json', '--config', pair.config])
    assert.equal(rejoin.status, 2, rejoin.stdout)
    assert.match(rejoin.json!.error!.message, /^ha rejoin is refused: .* has cluster\.manager: pacemaker, and a node rejoins by joining the cluster/)
    assert.ok(rejoin.json!.error!.actions.some((a) => /pcs cluster start NODE/.test(a)))
    assert.ok(rejoin.json!.error!.actions.some((a) => /crm_resource --cleanup --resource ctl-service --node NODE/.test(a)))
    const plan = ha(['rejoin', 'secondary', '--plan', '--json', '--config', pair.config])
    assert.equal(plan.status, 2, 'no rejoin runbook under Pacemaker either')
    for (const flag of ['--resume', '--abort']) {
      const r = ha(['failover', flag, '--yes', '--json', '--config', pair.config])
      assert.equal(r.status, 2, r.stdout)
      assert.match(r.json!.error!.message, new RegExp(`^ha failover ${flag} is refused: .* cluster\\.manager: pacemaker, and the manual failover's steps`))
      assert.ok(r.json!.error!.actions.some((a) => /ha failover --forget RUN/.test(a)))
    }

    const fenced = ha(['failover', '--fenced', 'primary', '--yes', '--json', '--config', pair.config])
    assert.equal(fenced.status, 2)
    assert.match(fenced.json!.error!.message, /--fenced is refused: .*Pacemaker fences a node it lost itself/)
    assert.deepEqual(changedPaths(before.secondary, secondarySnapshot(pair)), [])
    assert.deepEqual(changedPaths(before.primary, snapshot(pair.primary)), [])
  })

  test('ha failover --plan --from prints the switchover through Pacemaker, not the manual steps', (t) => {
    const pair = clusterPair(t)
    const r = ha(['failover', '--plan', '--from', 'primary', '--json', '--config', pair.config])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    const result = r.json!.result as {kind: string; plan: Array<{actions: string[]; id: string}>}
    assert.equal(result.kind, 'switchover')
    assert.deepEqual(result.plan.map((s) => s.id), ['preflight', 'move', 'wait', 'verify', 'clear'])
    const actions = result.plan.flatMap((s) => s.actions)
    assert.ok(actions.includes('ctl-a$ crm_resource --move --resource ctl-service --node ctl-b'), actions.join('\n'))
    assert.ok(actions.includes('ctl-a$ crm_resource --clear --resource ctl-service (the other node if ctl-a does not answer)'))
    assert.ok(!actions.some((a) => /ha restore|mount|ip addr (add|del)/.test(a)), 'no manual step in it')
    const text = ha(['failover', '--plan', '--from', 'secondary', '--config', pair.config])
    assert.match(text.stdout, /Switchover through Pacemaker: ctl-service from ctl-b \(secondary\) to ctl-a \(primary\)/)
    assert.match(text.stdout, /ctl-b\$ crm_resource --move --resource ctl-service --node ctl-a/)
  })
})

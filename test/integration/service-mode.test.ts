import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {ha, repoRoot, tempDir} from '../helpers/cli.js'

/**
 * failover.mode: service (issue 17, item 1): the nodes keep their own identity, only the service
 * moves. What an admin reads offline says so: the plan has no identity restore, no hold of the
 * restored boot file and no reboot; config check names the mode; a Pacemaker cluster without the
 * service mode, the service commands or a fence device is refused by field, and nothing is run.
 */
const example = readFileSync(join(repoRoot, 'templates/ha.example.yaml'), 'utf8')
const serviceMode = example.replace(/^ {2}mode: identity$/m, '  mode: service')
const pacemaker = serviceMode.replace(/^ {2}manager: none$/m, '  manager: pacemaker')

function write(t: Parameters<typeof tempDir>[0], text: string): string {
  const file = join(tempDir(t), 'ha.yaml')
  writeFileSync(file, text)
  return file
}

const steps = (plan: string) => [...plan.matchAll(/^ *\d+\. ([\w-]+) — /gm)].map((m) => m[1])

test('service mode: the failover plan restores without --takeover, holds nothing back and never reboots; the failback plan gives no identity back', (t) => {
  assert.notEqual(serviceMode, example, 'the example config carries failover.mode')
  const config = write(t, serviceMode)
  const plan = ha(['failover', '--plan', '--from', 'primary', '--config', config])
  assert.equal(plan.status, 0, plan.stderr)
  assert.deepEqual(steps(plan.stdout), ['preflight', 'confirm-fenced', 'final-backup', 'stop-services', 'release-ips', 'release-storage', 'acquire-storage', 'restore-service', 'take-ips', 'start-services', 'verify'])
  assert.match(plan.stdout, /ctl-b \(secondary\)\$ ha restore --yes --json --node secondary\n/)
  assert.doesNotMatch(plan.stdout, /--takeover|\/sbin\/reboot|ssh_host_/)

  const rejoin = ha(['rejoin', 'primary', '--plan', '--config', config])
  assert.equal(rejoin.status, 0, rejoin.stderr)
  assert.doesNotMatch(rejoin.stdout, /give-back-identity|\/sbin\/reboot/)
  assert.match(rejoin.stdout, /prove-standby/)

  // The identity mode (the default) is seed 001's procedure, unchanged.
  const identity = ha(['failover', '--plan', '--from', 'primary', '--config', write(t, example)])
  assert.deepEqual(steps(identity.stdout), ['preflight', 'confirm-fenced', 'final-backup', 'stop-services', 'release-ips', 'release-storage', 'acquire-storage', 'restore-takeover', 'hold-ips', 'reboot', 'take-ips', 'start-services', 'verify'])
})

test('config check names the mode, and says who decides when under Pacemaker', (t) => {
  const service = ha(['config', 'check', '--config', write(t, serviceMode), '--json']).json!
  assert.deepEqual((service.result as {failover: unknown}).failover, {cluster: {manager: 'none'}, mode: 'service', reboot: false})
  const human = ha(['config', 'check', '--config', write(t, serviceMode)])
  assert.match(human.stdout, /failover: service \(.*each node keeps its own name and keys; no reboot\)/)
  const cluster = ha(['config', 'check', '--config', write(t, pacemaker)])
  assert.equal(cluster.status, 0, cluster.stderr)
  assert.match(cluster.stdout, /cluster: Pacemaker decides when and where \(group ha-service, resource ha-controller, ocf:ha:controller\)/)
  const identity = ha(['config', 'check', '--config', write(t, example), '--json']).json!
  assert.deepEqual((identity.result as {failover: unknown}).failover, {cluster: {manager: 'none'}, mode: 'identity', reboot: true})
})

test('a Pacemaker cluster in identity mode, without a service command or without fencing is refused by field (exit 2)', (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['identity mode', example.replace(/^ {2}manager: none$/m, '  manager: pacemaker'), /failover\.mode: is identity, but cluster\.manager is pacemaker: .* set failover\.mode: service/],
    ['no services.status', pacemaker.replace(/^ {2}status: \[\/etc\/init\.d\/xvm, status\]\n/m, ''), /services: services\.status is not set: under Pacemaker, ha's resource agent answers monitor with it/],
    ['no fencing', pacemaker.replace(/^ {2}fencing:\n(?: {4}.*\n)+/m, '  fencing: []\n'), /cluster\.fencing: lists no fence device/],
    ['an id twice', pacemaker.replace('id: fence-ctl-b', 'id: ha-controller'), /cluster: the id ha-controller is used twice/],
    ['a bad id', pacemaker.replace('resource: ha-controller', 'resource: "1 bad"'), /cluster\.resource.*must be a Pacemaker id/],
    ['a bad fence agent', pacemaker.replace('agent: fence_ipmilan', 'agent: ipmi'), /cluster\.fencing\.0\.agent.*must be a fence agent name/],
  ]
  for (const [what, text, message] of cases) {
    assert.notEqual(text, pacemaker, `${what}: the case changes the config`)
    const config = write(t, text)
    const r = ha(['config', 'check', '--config', config])
    assert.equal(r.status, 2, `${what}: ${r.stdout}${r.stderr}`)
    assert.match(r.stderr, message, what)
    assert.match(r.stderr, new RegExp(`${config.replaceAll('/', '\\/')}:\\d+`), `${what}: names file:line`)
  }
})

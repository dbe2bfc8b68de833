import assert from 'node:assert/strict'
import {test} from 'node:test'

import {serviceIpChecks} from '../../src/check/checks/service-ip.js'
import type {NodeFacts} from '../../src/check/types.js'
import {probeIds} from '../../src/check/probes.js'
import {type Config, configSchema} from '../../src/config/schema.js'

/**
 * The service-IP decision table, fed with real `ip -o addr`, `ip -o link` and `arping -D`
 * outputs recorded in two namespaces (the live wire is tested in test/integration/arping.test.ts).
 */
const config: Config = configSchema.parse({
  data_dir: '/d',
  nodes: {primary: {hostname: 'a'}, secondary: {hostname: 'b'}},
  service_ips: [{address: '198.18.0.100/24', interface: 'eth0'}],
})
const mac = {primary: '5a:7b:11:1d:c1:97', secondary: '02:00:00:00:00:02', stranger: 'de:ad:be:ef:00:01'}
const addrLine = (ip: string) => `2: eth0    inet ${ip}/24 scope global eth0\\       valid_lft forever preferred_lft forever\n`
const linkLine = (m: string) => `2: eth0@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether ${m} brd ff:ff:ff:ff:ff:ff\n`
const answered = (m: string) => ({code: 1, stdout: `ARPING 198.18.0.100 from 0.0.0.0 eth0\nUnicast reply from 198.18.0.100 [${m.toUpperCase()}]  0.520ms\nSent 1 probes (1 broadcast(s))\nReceived 1 response(s)\n`})
const silent = {code: 0, stdout: 'ARPING 198.18.0.100 from 0.0.0.0 eth0\nSent 2 probes (2 broadcast(s))\nReceived 0 response(s)\n'}
const heldHere = {code: 0, stdout: 'ha-arping: held here\n'}

function node(name: 'primary' | 'secondary', holds: boolean, wire: {code: number; stdout: string}): NodeFacts {
  const r = (id: string, code: number, stdout: string) => [id, {argv: [], code, id, stderr: Buffer.alloc(0), stdout: Buffer.from(stdout)}] as const
  return {
    probes: new Map([
      r(probeIds.ipAddr, 0, addrLine(name === 'primary' ? '198.18.0.2' : '198.18.0.3') + (holds ? addrLine('198.18.0.100') : '')),
      r(probeIds.ipLink, 0, linkLine(mac[name])),
      r(probeIds.wire('198.18.0.100/24'), wire.code, wire.stdout),
    ]),
    report: {address: 'x', elapsed_ms: 0, node: name, reachable: true},
    root: '/',
  }
}

const unreachable: NodeFacts = {report: {address: 'x', elapsed_ms: 0, node: 'secondary', reachable: false}, root: '/'}
const judge = (primary: NodeFacts, secondary: NodeFacts) => serviceIpChecks(config, {primary, secondary})[0]

test('held by the primary, which answers on the wire from the secondary: PASS', () => {
  const c = judge(node('primary', true, heldHere), node('secondary', false, answered(mac.primary)))
  assert.equal(c.status, 'pass')
  assert.deepEqual(c.evidence.held_by, ['primary'])
})

test('held by both nodes: FAIL, two actives', () => {
  const c = judge(node('primary', true, heldHere), node('secondary', true, heldHere))
  assert.equal(c.status, 'fail')
  assert.match(c.summary, /held by BOTH nodes/)
})

test('held by the primary but a third MAC also answers: FAIL naming that MAC', () => {
  const c = judge(node('primary', true, heldHere), node('secondary', false, answered(mac.stranger)))
  assert.equal(c.status, 'fail')
  assert.match(c.summary, new RegExp(`${mac.stranger} \\(not primary\\) also answers`))
})

test('held by neither node, yet something answers: FAIL (another machine has it)', () => {
  const c = judge(node('primary', false, silent), node('secondary', false, answered(mac.stranger)))
  assert.equal(c.status, 'fail')
})

test('held by neither and silent on the wire: WARN', () => {
  const c = judge(node('primary', false, silent), node('secondary', false, silent))
  assert.equal(c.status, 'warn')
  assert.match(c.summary, /held by no node; nothing answers/)
})

test('held but silent on the wire from the peer: WARN (interface down?)', () => {
  assert.equal(judge(node('primary', true, heldHere), node('secondary', false, silent)).status, 'warn')
})

test('a node unreachable: FAIL, since it might hold the address too', () => {
  const c = judge(node('primary', true, heldHere), unreachable)
  assert.equal(c.status, 'fail')
  assert.match(c.summary, /cannot tell whether secondary holds it/)
})

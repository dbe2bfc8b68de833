import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {activeOn, CrmMonError, parseCrmMon, runningOn, stonithResources} from '../../src/pacemaker/crm-mon.js'
import {chooseView, clusterReport, crmMonFailure, nodeOfName} from '../../src/pacemaker/view.js'
import {parseXml, XmlError} from '../../src/pacemaker/xml.js'
import {type Config, configSchema} from '../../src/config/schema.js'

/**
 * crm_mon's XML as Pacemaker 2.1.5 printed it in the cluster lab (test/fixtures/crm-mon/): the
 * group ha-service (a Dummy for storage, IPaddr2, a Dummy for the controller) started on ctl-b;
 * the same after the controller's state file was removed (a failed monitor); after
 * `stonith_admin --reboot ctl-a` (the peer down, then back); mid-move; a node in standby; a node
 * whose pacemaker stopped (crm_mon's own error document); and, from ctl-b, a node pending with an
 * escaped attribute value.
 */
const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'crm-mon', name), 'utf8')

const config: Config = configSchema.parse({
  cluster: {fencing: [{agent: 'fence_ipmilan', id: 'fence-a'}], manager: 'pacemaker'},
  data_dir: '/d',
  failover: {mode: 'service'},
  nodes: {primary: {hostname: 'ctl-a'}, secondary: {hostname: 'ctl-b'}},
})

describe('crm_mon --output-as=xml, read', () => {
  it('a running group: both nodes online, quorum, DC, each member started on ctl-b, the fence device', () => {
    const view = parseCrmMon(fixture('group-started.xml'))
    assert.equal(view.dc, 'ctl-a')
    assert.equal(view.quorate, true)
    assert.equal(view.stonith_enabled, true)
    assert.deepEqual(view.nodes.map((n) => [n.name, n.online, n.standby, n.unclean, n.is_dc]), [['ctl-a', true, false, false, true], ['ctl-b', true, false, false, false]])
    assert.deepEqual(
      view.resources.map((r) => [r.id, r.agent, r.role, r.group, r.nodes.join(',')]),
      [
        ['fence-lab', 'stonith:fence_ha_lab', 'Started', null, 'ctl-a'],
        ['ha-storage', 'ocf:heartbeat:Dummy', 'Started', 'ha-service', 'ctl-b'],
        ['ha-ip-0', 'ocf:heartbeat:IPaddr2', 'Started', 'ha-service', 'ctl-b'],
        ['ha-controller', 'ocf:heartbeat:Dummy', 'Started', 'ha-service', 'ctl-b'],
      ],
    )
    assert.deepEqual(runningOn(view, 'ha-service'), ['ctl-b'])
    assert.deepEqual(runningOn(view, 'ha-controller'), ['ctl-b'])
    assert.deepEqual(stonithResources(view).map((r) => r.id), ['fence-lab'])
    assert.deepEqual(view.failures, [])
    assert.deepEqual(view.fencing, [])
  })

  it('a failed monitor: the resource (from its op key), op, node, rc, the agent\'s reason, when', () => {
    const view = parseCrmMon(fixture('failed-action.xml'))
    assert.deepEqual(view.failures, [
      {exit_reason: 'No process state file found', interval_ms: 5000, last_rc_change: '2026-12-07 17:38:25Z', node: 'ctl-b', op: 'monitor', rc: 7, rc_text: 'not running', resource: 'ha-controller'},
    ])
    // Restarted in place: still started where it was.
    assert.deepEqual(runningOn(view, 'ha-service'), ['ctl-b'])
  })

  it('a fencing: the peer offline, the survivor DC and quorate (two_node), the event in the history', () => {
    const view = parseCrmMon(fixture('fenced-peer-down.xml'))
    assert.equal(view.dc, 'ctl-b')
    assert.equal(view.quorate, true)
    assert.deepEqual(view.nodes.map((n) => [n.name, n.online]), [['ctl-a', false], ['ctl-b', true]])
    assert.equal(view.fencing.length, 1)
    assert.deepEqual(view.fencing[0], {action: 'reboot', client: 'stonith_admin.439', completed: '2026-12-07 17:38:38Z', delegate: 'ctl-b', exit_reason: '', origin: 'ctl-b', status: 'success', target: 'ctl-a'})
    const back = parseCrmMon(fixture('fenced-peer-back.xml'))
    assert.ok(back.nodes.every((n) => n.online))
    assert.equal(back.fencing[0].target, 'ctl-a')
  })

  it('mid-move: the group is not started anywhere while a member is Starting and the controller Stopped', () => {
    const view = parseCrmMon(fixture('moving.xml'))
    assert.deepEqual(view.resources.filter((r) => r.group).map((r) => [r.id, r.role, r.active]), [['ha-storage', 'Started', true], ['ha-ip-0', 'Starting', true], ['ha-controller', 'Stopped', false]])
    assert.deepEqual(runningOn(view, 'ha-service'), [], 'a group is where all of its members are started')
    assert.deepEqual(runningOn(view, 'ha-controller'), [])
    assert.deepEqual(activeOn(view, 'ha-service'), ['ctl-b'])
  })

  it('standby and pending nodes; an escaped attribute value is decoded', () => {
    assert.deepEqual(parseCrmMon(fixture('standby.xml')).nodes.map((n) => [n.name, n.standby]), [['ctl-a', true], ['ctl-b', false]])
    const left = parseCrmMon(fixture('peer-left.xml'))
    assert.deepEqual(left.nodes.map((n) => [n.name, n.pending]), [['ctl-a', true], ['ctl-b', false]])
    assert.equal(parseXml(fixture('peer-left.xml')).children.find((c) => c.name === 'nodes')!.children[0].attrs.feature_set, '<3.15.1')
  })

  it('crm_mon\'s own error document (pacemaker not running) is an error with its message, never an empty view', () => {
    assert.throws(() => parseCrmMon(fixture('not-connected.xml')), (error: Error) => error instanceof CrmMonError && /Not connected \(status 102\): error: Could not connect to launcher: Connection refused/.test(error.message))
    const failure = crmMonFailure({code: 102, stderr: '', stdout: fixture('not-connected.xml')})
    assert.match(failure.message, /Not connected/)
    assert.match(crmMonFailure({code: 127, stderr: '', stdout: ''}).message, /crm_mon is not installed/)
    assert.match(crmMonFailure({code: 1, stderr: 'boom\n', stdout: ''}).message, /crm_mon exited 1: boom/)
  })

  it('refuses what is not crm_mon\'s status: other XML, no summary, truncated, garbled, unknown entities', () => {
    const refused = (xml: string, re: RegExp) => assert.throws(() => parseCrmMon(xml), (error: Error) => error instanceof CrmMonError && re.test(error.message), xml.slice(0, 60))
    refused('<cib epoch="1"/>', /the document is <cib>, not <pacemaker-result>/)
    refused('<pacemaker-result api-version="2.25"><nodes/></pacemaker-result>', /no <summary><current_dc>/)
    refused('<pacemaker-result api-version="2.25"><summary><current_dc present="false"/></summary></pacemaker-result>', /no <nodes>/)
    const whole = fixture('group-started.xml')
    refused(whole.slice(0, whole.indexOf('<resources>')), /not XML: <pacemaker-result> has no end tag/)
    refused(whole.slice(0, whole.length / 2), /not XML: attribute \w+: unterminated value/)
    refused(whole.replace('</nodes>', '</node>'), /not XML: <\/node> where <\/nodes> was expected/)
    refused(whole.replace('name="ctl-a"', 'name="ctl&nbsp;a"'), /unknown entity &nbsp;/)
    refused(whole.replace('name="ctl-a"', 'name=ctl-a'), /value not quoted/)
    refused('', /no element in the document/)
    refused('crm_mon: command not found', /text before the root element/)
    refused(`${whole}<pacemaker-result/>`, /more after the root element/)
  })

  it('reads attributes in any order and either quote, comments, character references', () => {
    const xml = `<?xml version="1.0"?>
<!-- reordered by hand -->
<pacemaker-result api-version='2.25'>
  <summary><current_dc with_quorum="true" name='ctl&#45;b' present="true"/></summary>
  <nodes><node online="true" name="ctl-b" standby='false'/></nodes>
  <resources><group id="g"><resource role="Started" active="true" id="r_1" resource_agent="ocf:ha:controller"><node name="ctl-b"/></resource></group></resources>
  <failures><failure task="start" interval="0" op_key="r_1_start_0" node="ctl-b" exitcode="1" exitstatus="error" exitreason="a &lt;b&gt; &amp; &quot;c&quot;"/></failures>
  <status code="0" message="OK"/>
</pacemaker-result>`
    const view = parseCrmMon(xml)
    assert.equal(view.dc, 'ctl-b')
    assert.deepEqual(runningOn(view, 'g'), ['ctl-b'])
    assert.equal(view.failures[0].resource, 'r_1')
    assert.equal(view.failures[0].exit_reason, 'a <b> & "c"')
    assert.equal(view.stonith_enabled, null, 'unknown, not false, when crm_mon printed no cluster options')
    assert.throws(() => parseXml('<a x="1" x="2"/>'), XmlError)
    assert.throws(() => parseXml('<!DOCTYPE a><a/>'), /DTD/)
  })
})

describe('the cluster\'s view as ha reports it', () => {
  it('maps Pacemaker\'s node names to ha\'s nodes, and says where the group and the controller run', () => {
    assert.equal(nodeOfName(config, 'ctl-b'), 'secondary')
    assert.equal(nodeOfName(config, 'ctl-a.example.net'), 'primary')
    assert.equal(nodeOfName(config, 'elsewhere'), null)
    const report = clusterReport(config, parseCrmMon(fixture('failed-action.xml')), 'primary')
    assert.equal(report.from, 'primary')
    assert.deepEqual(report.group.running_on, ['ctl-b'])
    assert.equal(report.group.node, 'secondary')
    assert.deepEqual(report.controller, {agent: 'ocf:heartbeat:Dummy', id: 'ha-controller', node: 'secondary', running_on: ['ctl-b']})
    assert.equal(report.failures.length, 1)
    assert.deepEqual(report.stonith_resources, ['fence-lab'])
  })

  it('takes a quorate node\'s view first, and names each node\'s reason when none answers', () => {
    const down = parseCrmMon(fixture('fenced-peer-down.xml'))
    const unquorate = {...down, quorate: false}
    assert.equal(chooseView(config, [{node: 'primary', view: unquorate}, {node: 'secondary', view: down}]).report.from, 'secondary')
    const none = chooseView(config, [{error: 'crm_mon exited 102', node: 'primary'}, {error: 'does not answer ssh', node: 'secondary'}])
    assert.equal(none.report.from, null)
    assert.equal(none.report.error, 'no node gave the cluster\'s view: primary: crm_mon exited 102; secondary: does not answer ssh')
  })
})

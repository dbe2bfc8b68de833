import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmodSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {ha, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * ha cluster setup (issue 17 item 3), judged by Pacemaker's own tools, offline: no cluster runs
 * here. CIB_file points cibadmin, crm_attribute and crm_resource at a CIB in a file instead of a
 * live cluster's, for ha's --apply as for the test's own questions; crm_verify --xml-file judges
 * it. What is asserted is what an admin would check: crm_verify's verdict, each resource's agent,
 * parameters and operations as crm_resource reads them back, and a file left byte for byte as it
 * was when ha refuses.
 */
const skip = missingPrerequisite(['pacemaker'])

/** A password a shell and an XML file would both mangle if either quoted it wrongly. */
const nasty = `p<a&s"s'w rd`

const services = `services:
  start: [/etc/init.d/xvm, start]
  stop: [/etc/init.d/xvm, stop]
  status: [/etc/init.d/xvm, status]
`

/** A mount, two service IPs, fence_ipmilan for each node and fence_scsi for both. */
const mountConfig = `data_dir: /var/opt/sun/xvm
nodes:
  primary: {hostname: ctl-a}
  secondary: {hostname: ctl-b}
service_ips:
  - {address: 198.18.1.10/24, interface: eth0}
  - {address: 10.20.0.10/16, interface: bond0}
storage: {kind: mount, device: /dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part1, fstype: xfs}
${services}failover: {mode: service}
cluster:
  manager: pacemaker
  fencing:
    - id: fence-ctl-a
      agent: fence_ipmilan
      params: {ip: 10.0.0.11, username: admin, password: '${nasty.replaceAll("'", "''")}', lanplus: 1, pcmk_host_list: ctl-a}
    - id: fence-ctl-b
      agent: fence_ipmilan
      params: {ip: 10.0.0.12, username: admin, password: secret, lanplus: 1, pcmk_host_list: ctl-b}
    - id: fence-disks
      agent: fence_scsi
      params: {devices: /dev/disk/by-id/wwn-0x5000c500a1b2c3d4, pcmk_host_list: ctl-a ctl-b}
`

/** zfs, one IP, its own ids and policy. */
const zfsConfig = `data_dir: /xvmpool/data
nodes:
  primary: {hostname: node1}
  secondary: {hostname: node2}
service_ips:
  - {address: 192.0.2.50/24, interface: ens3}
storage: {kind: zfs, pool: xvmpool}
${services}failover: {mode: service}
cluster:
  manager: pacemaker
  group: xvm
  resource: xvm-controller
  monitor_interval: 15s
  deep_monitor_interval: 2m
  migration_threshold: 5
  failure_timeout: 30m
  stickiness: 500
  fencing:
    - {id: ipmi-node1, agent: fence_ipmilan, params: {ip: 10.1.0.1, username: root, password: x, pcmk_host_list: node1}}
    - {id: ipmi-node2, agent: fence_ipmilan, params: {ip: 10.1.0.2, username: root, password: y, pcmk_host_list: node2}}
`

function setupDir(t: Parameters<typeof tempDir>[0], config: string) {
  const dir = tempDir(t, 'ha-cluster-setup-')
  const configPath = join(dir, 'ha.yaml')
  writeFileSync(configPath, config, {mode: 0o600})
  const cib = join(dir, 'cib.xml')
  writeFileSync(cib, spawnSync('cibadmin', ['--empty'], {encoding: 'utf8'}).stdout)
  const env = {CIB_file: cib}
  const tool = (argv: string[]) => spawnSync(argv[0], argv.slice(1), {encoding: 'utf8', env: {...process.env, ...env}})
  const setup = (...args: string[]) => ha(['cluster', 'setup', '--config', configPath, ...args], {env})
  const param = (rsc: string, name: string, meta = false) => tool(['crm_resource', '--resource', rsc, ...(meta ? ['--meta'] : []), '--get-parameter', name, '--quiet']).stdout.trim()
  return {cib, configPath, dir, param, setup, tool}
}

function verify(file: string) {
  const r = spawnSync('crm_verify', ['--xml-file', file, '-V'], {encoding: 'utf8'})
  return {code: r.status, output: r.stdout + r.stderr}
}

/** The members of a group, in order, as "id class:provider:type". */
function groupMembers(cibText: string, group: string): string[] {
  const body = new RegExp(`<group id="${group}">([\\s\\S]*?)</group>`).exec(cibText)?.[1] ?? ''
  return [...body.matchAll(/<primitive id="([^"]+)" class="([^"]+)" provider="([^"]+)" type="([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}:${m[3]}:${m[4]}`)
}

describe('ha cluster setup against Pacemaker\'s own tools (offline, CIB_file)', {skip}, () => {
  test('mount, two service IPs, three fence devices: the printed XML in a whole CIB, and the CIB --apply builds, both pass crm_verify', (t) => {
    const s = setupDir(t, mountConfig)
    const printed = s.setup('--json', '--node-config', '/etc/ha/ha.yaml')
    assert.equal(printed.status, 0, printed.stderr)
    const {cib, pcs} = printed.json!.result as {cib: string; pcs: string[]}
    // What an admin who takes the printed XML gets: it in an otherwise empty CIB.
    const whole = join(s.dir, 'printed.xml')
    writeFileSync(whole, `<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">\n${cib.replace('</crm_config>', '</crm_config>\n  <nodes/>')}<status/>\n</cib>\n`)
    assert.deepEqual(verify(whole), {code: 0, output: ''})

    const applied = s.setup('--apply', '--json', '--node-config', '/etc/ha/ha.yaml')
    assert.equal(applied.status, 0, applied.stderr)
    assert.deepEqual(verify(s.cib), {code: 0, output: ''})
    const text = readFileSync(s.cib, 'utf8')
    const {epoch_after: epochAfter, epoch_before: epochBefore, verified_live: verifiedLive} = applied.json!.result.applied
    assert.deepEqual([epochBefore, verifiedLive], [1, true])
    assert.equal(`epoch="${epochAfter}"`, /\sepoch="\d+"/.exec(text)?.[0].trim(), 'the epoch it reports is the CIB\'s')
    assert.deepEqual(groupMembers(text, 'ha-service'), [
      'ha-service-storage ocf:heartbeat:Filesystem',
      'ha-service-ip1 ocf:heartbeat:IPaddr2',
      'ha-service-ip2 ocf:heartbeat:IPaddr2',
      'ha-controller ocf:ha:controller',
    ])
    assert.deepEqual(['device', 'directory', 'fstype'].map((p) => s.param('ha-service-storage', p)), ['/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part1', '/var/opt/sun/xvm', 'xfs'])
    assert.deepEqual(['ip', 'cidr_netmask', 'nic'].map((p) => s.param('ha-service-ip2', p)), ['10.20.0.10', '16', 'bond0'])
    assert.equal(s.param('ha-controller', 'config'), '/etc/ha/ha.yaml')
    assert.equal(s.param('fence-ctl-a', 'password'), nasty, 'the XML escaping survives cibadmin and crm_resource')
    assert.equal(s.param('fence-disks', 'provides', true), 'unfencing')
    assert.deepEqual(['migration-threshold', 'failure-timeout', 'resource-stickiness'].map((p) => s.param('ha-service', p, true)), ['3', '600s', '100'])
    // The controller's monitors: the default depth every 10 s, OCF_CHECK_LEVEL 10 every minute.
    assert.match(text, /<op id="ha-controller-monitor-interval-10s" name="monitor" interval="10s" timeout="60s"\/>/)
    assert.match(text, /<op id="ha-controller-monitor-interval-60s" name="monitor" interval="60s" timeout="60s">\s*<instance_attributes[^>]*>\s*<nvpair [^>]*name="OCF_CHECK_LEVEL" value="10"\/>/)
    assert.match(text, /<op id="ha-controller-start-interval-0s" name="start" interval="0s" timeout="600s"\/>/)
    for (const [name, value] of [['stonith-enabled', 'true'], ['no-quorum-policy', 'stop']]) {
      assert.equal(s.tool(['crm_attribute', '--type', 'crm_config', '--name', name, '--query', '--quiet']).stdout.trim(), value)
    }

    // Each per-node IPMI device is kept off the node it fences; the shared disk one is not.
    assert.match(text, /<rsc_location id="fence-ctl-a-avoids-ctl-a" rsc="fence-ctl-a" node="ctl-a" score="-INFINITY"\/>/)
    assert.doesNotMatch(text, /rsc="fence-disks"/)
    assert.ok(pcs.includes(`pcs stonith create fence-ctl-a fence_ipmilan ip=10.0.0.11 username=admin 'password=p<a&s"s'\\''w rd' lanplus=1 pcmk_host_list=ctl-a op monitor interval=60s timeout=20s`), pcs.join('\n'))
  })

  test('the pcs commands read back, word for word, through a real shell', (t) => {
    const s = setupDir(t, mountConfig)
    const {pcs} = s.setup('--json').json!.result as {pcs: string[]}
    const fence = pcs.find((line) => line.startsWith('pcs stonith create fence-ctl-a '))!
    const words = spawnSync('sh', ['-c', `pcs() { for w in "$@"; do printf '%s\\n' "$w"; done; }; ${fence}`], {encoding: 'utf8'}).stdout.split('\n')
    assert.ok(words.includes(`password=${nasty}`), words.join(' | '))
    const controller = pcs.find((line) => line.startsWith('pcs resource create ha-controller '))!
    assert.match(controller, / ocf:ha:controller config=\S+ op start timeout=600s stop timeout=600s monitor interval=10s timeout=60s monitor interval=60s timeout=60s OCF_CHECK_LEVEL=10 --group ha-service$/)
    assert.ok(pcs.includes('pcs property set stonith-enabled=true no-quorum-policy=stop priority-fencing-delay=15s'))
    assert.ok(pcs.includes('pcs resource meta ha-service migration-threshold=3 failure-timeout=600s resource-stickiness=100 priority=10'))
    assert.ok(pcs.indexOf('pcs constraint location fence-ctl-b avoids ctl-b') > 0)
    assert.ok(pcs.includes('pcs constraint location ha-service prefers ctl-a=1'), pcs.join('\n'))
  })

  test('zfs, its own ids and policy: crm_verify accepts it; a second --apply changes nothing, byte for byte, and says so', (t) => {
    const s = setupDir(t, zfsConfig)
    const first = s.setup('--apply', '--json')
    assert.equal(first.status, 0, first.stderr)
    const changes = first.json!.result.applied.changes as string[]
    assert.deepEqual(changes, ['created ipmi-node1', 'created ipmi-node2', 'created xvm', 'created ipmi-node1-avoids-node1', 'created ipmi-node2-avoids-node2', 'created xvm-prefers-node1', 'set stonith-enabled=true', 'set no-quorum-policy=stop', 'set priority-fencing-delay=15s'])
    assert.deepEqual(verify(s.cib), {code: 0, output: ''})
    const text = readFileSync(s.cib, 'utf8')
    assert.deepEqual(groupMembers(text, 'xvm'), ['xvm-storage ocf:heartbeat:ZFS', 'xvm-ip1 ocf:heartbeat:IPaddr2', 'xvm-controller ocf:ha:controller'])
    assert.equal(s.param('xvm-storage', 'pool'), 'xvmpool')
    // The first start is on the primary (before any takeover its saved state is the one that counts), never a pull back: 1 < stickiness.
    assert.match(text, /<rsc_location id="xvm-prefers-node1" rsc="xvm" node="node1" score="1"\/>/)
    assert.deepEqual(['migration-threshold', 'failure-timeout', 'resource-stickiness'].map((p) => s.param('xvm', p, true)), ['5', '1800s', '500'])
    assert.match(text, /name="monitor" interval="15s"/)
    assert.match(text, /<op id="xvm-controller-monitor-interval-120s" name="monitor" interval="120s"/)
    assert.equal(s.param('xvm-controller', 'config'), s.configPath, 'by default, the path of the file read')

    const second = s.setup('--apply')
    assert.equal(second.status, 0, second.stderr)
    assert.match(second.stdout, /this node's CIB already holds this configuration: nothing changed \(epoch \d+\); crm_verify -L accepts it$/m)
    assert.equal(readFileSync(s.cib, 'utf8'), text)
  })

  test('a CIB of the admin\'s own is kept: ha replaces only its own ids, and a changed ha.yaml updates them in place', (t) => {
    const s = setupDir(t, zfsConfig)
    const own = s.tool(['cibadmin', '--create', '--scope', 'resources', '--xml-text', '<primitive id="site-web" class="ocf" provider="heartbeat" type="Dummy"/>'])
    assert.equal(own.status, 0, own.stderr)
    assert.equal(s.setup('--apply').status, 0)
    writeFileSync(s.configPath, zfsConfig.replace('migration_threshold: 5', 'migration_threshold: 2').replace('192.0.2.50/24', '192.0.2.51/24'), {mode: 0o600})
    const again = s.setup('--apply', '--json')
    assert.equal(again.status, 0, again.stderr)
    assert.deepEqual(again.json!.result.applied.changes, ['replaced xvm'])
    assert.equal(s.param('xvm', 'migration-threshold', true), '2')
    assert.equal(s.param('xvm-ip1', 'ip'), '192.0.2.51')
    assert.match(readFileSync(s.cib, 'utf8'), /<primitive id="site-web" class="ocf" provider="heartbeat" type="Dummy"\/>/)
    assert.deepEqual(verify(s.cib).code, 0)
  })

  test('a result crm_verify rejects changes nothing: the CIB file is byte for byte as it was, exit 2 with crm_verify\'s words', (t) => {
    const s = setupDir(t, mountConfig)
    // Something of the admin's own that crm_verify refuses: two monitors of one interval.
    const broken = '<primitive id="site-db" class="ocf" provider="heartbeat" type="Dummy"><operations><op id="db-m1" name="monitor" interval="10s"/><op id="db-m2" name="monitor" interval="10s"/></operations></primitive>'
    assert.equal(s.tool(['cibadmin', '--create', '--scope', 'resources', '--xml-text', broken]).status, 0)
    const before = readFileSync(s.cib, 'utf8')
    const r = s.setup('--apply', '--json')
    assert.equal(r.status, 2, r.stdout)
    assert.equal(r.json!.error!.name, 'ConfigError')
    assert.match(r.json!.error!.message, /^crm_verify rejects this node's CIB with ha's resources in it \(exit \d+\): .*Operation db-m2 is duplicate of db-m1.*; nothing was changed$/)
    assert.equal(readFileSync(s.cib, 'utf8'), before)
  })

  /**
   * Someone else changes the CIB while ha works: cibadmin, first on the PATH, makes twelve changes
   * of its own (real ones, through the real crm_attribute) just before the first `--patch` it is
   * asked for (every one, with `always`), then does what it was asked.
   */
  function busyCluster(dir: string, always: boolean): {PATH: string} {
    const bin = join(dir, 'bin')
    mkdirSync(bin)
    const once = always ? '' : `[ -e ${dir}/changed ] || `
    writeFileSync(join(bin, 'cibadmin'), `#!/bin/sh
if [ "$1" = --patch ]; then
  ${once}for i in 1 2 3 4 5 6 7 8 9 10 11 12; do crm_attribute --type crm_config --name site-note --update "$i$$"; done
  touch ${dir}/changed
fi
exec /usr/sbin/cibadmin "$@"
`)
    chmodSync(join(bin, 'cibadmin'), 0o755)
    return {PATH: `${bin}:${process.env.PATH}`}
  }

  test('the CIB moves on between the read and the patch: the cluster refuses the stale patch, ha reads again and applies; the other change is kept', (t) => {
    const s = setupDir(t, zfsConfig)
    const r = ha(['cluster', 'setup', '--apply', '--json', '--config', s.configPath], {env: {CIB_file: s.cib, ...busyCluster(s.dir, false)}})
    assert.equal(r.status, 0, r.stdout)
    assert.ok(r.json!.result.applied.changes.includes('created xvm'))
    assert.deepEqual(verify(s.cib), {code: 0, output: ''})
    assert.match(s.tool(['crm_attribute', '--type', 'crm_config', '--name', 'site-note', '--query', '--quiet']).stdout, /^12\d+$/m, 'the change made meanwhile is there too')
    assert.deepEqual(groupMembers(readFileSync(s.cib, 'utf8'), 'xvm').length, 3)
  })

  test('a CIB that keeps moving: three refused patches, exit 1, and nothing of ha\'s in it', (t) => {
    const s = setupDir(t, zfsConfig)
    const r = ha(['cluster', 'setup', '--apply', '--json', '--config', s.configPath], {env: {CIB_file: s.cib, ...busyCluster(s.dir, true)}})
    assert.equal(r.status, 1, r.stdout)
    assert.match(r.json!.error!.message, /^the cluster's CIB changed between ha reading it and sending the patch \(`cibadmin --patch` exit 103: .*\), 3 times in a row; nothing was changed$/)
    const text = readFileSync(s.cib, 'utf8')
    assert.doesNotMatch(text, /id="xvm"|ipmi-node1/)
  })

  const refusals: Array<[string, string, RegExp]> = [
    ['cluster.manager none', mountConfig.replace('manager: pacemaker', 'manager: none'), /^cluster\.manager is none: /],
    ['storage.kind manual', mountConfig.replace(/storage: .*/, 'storage: {kind: manual}'), /^storage: storage\.kind is manual: a person moves the storage/],
    ['storage.kind none', mountConfig.replace(/storage: .*/, 'storage: {kind: none}'), /^storage: storage\.kind is none: /],
    ['storage.device unset', mountConfig.replace(/storage: .*/, 'storage: {kind: mount}'), /^storage: storage\.device is not set: /],
    ['two monitors of one interval', zfsConfig.replace('deep_monitor_interval: 2m', 'deep_monitor_interval: 15s'), /^cluster\.deep_monitor_interval is 15s, the same as cluster\.monitor_interval/],
    ['a fence id ha derives itself', zfsConfig.replace('id: ipmi-node2', 'id: xvm-storage'), /^the Pacemaker id xvm-storage would be used twice \(cluster\.fencing\.1\.id/],
    ['no fence device', zfsConfig.replace(/ {2}fencing:\n(?: {4}.*\n)+/, ''), /ha\.yaml:\d+: cluster\.fencing: lists no fence device/],
    ['identity mode', zfsConfig.replace('failover: {mode: service}', 'failover: {mode: identity}'), /ha\.yaml:\d+: failover\.mode: is identity, but cluster\.manager is pacemaker/],
  ]
  for (const [name, config, message] of refusals) {
    test(`refused, nothing printed and nothing changed: ${name}`, (t) => {
      const s = setupDir(t, config)
      const before = readFileSync(s.cib, 'utf8')
      for (const args of [[], ['--apply']]) {
        const r = s.setup(...args, '--json')
        assert.equal(r.status, 2, r.stdout)
        assert.equal(r.json!.error!.name, 'ConfigError')
        assert.match(r.json!.error!.message, message)
        assert.ok(r.json!.error!.actions.length > 0, 'says what to do')
        assert.equal(r.json!.result, undefined)
      }

      const screen = s.setup('--apply')
      assert.equal(screen.stdout, '')
      assert.match(screen.stderr, /^error: /)
      assert.equal(readFileSync(s.cib, 'utf8'), before)
    })
  }
})

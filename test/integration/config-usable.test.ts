import assert from 'node:assert/strict'
import {chmodSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {ha, repoRoot, tempDir} from '../helpers/cli.js'

/**
 * "valid" means usable: `ha config check` refuses (exit 2, file:line: field) a configuration the
 * schema accepts but that can never work, and says which command needs a key the schema leaves
 * optional; `ha failover` and `ha rejoin` refuse a config without those keys by name, never crash.
 */
const example = readFileSync(join(repoRoot, 'templates/ha.example.yaml'), 'utf8')
const withoutServices = example.replace(/\nservices:\n(?: {2}.*\n)+/, '\n')

/** The line of the last line holding `needle`. */
function lineOf(text: string, needle: string): number {
  const line = text.split('\n').findLastIndex((l) => l.includes(needle)) + 1
  assert.ok(line > 0, `${needle} in the config`)
  return line
}

test('without services: ha rejoin --plan names the keys it needs instead of crashing, and config check says which command needs which', (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, withoutServices)
  const rejoin = ha(['rejoin', 'secondary', '--plan', '--config', config])
  assert.equal(rejoin.status, 2, rejoin.stderr)
  assert.doesNotMatch(rejoin.stderr, /Cannot read properties/)
  assert.match(rejoin.stderr, new RegExp(`${config}: services\\.stop, services\\.status not set: ha rejoin needs them`))
  const failover = ha(['failover', '--plan', '--from', 'primary', '--config', config])
  assert.equal(failover.status, 2)
  assert.match(failover.stderr, new RegExp(`${config}: services\\.start, services\\.stop, services\\.status not set: ha failover needs them`))

  const r = ha(['config', 'check', '--config', config])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /warning: ha failover needs services\.start, services\.stop, services\.status, which are not set/)
  assert.match(r.stderr, /warning: ha rejoin needs services\.stop, services\.status, which are not set/)
  assert.match(r.stdout, /not set for ha failover: services\.start, services\.stop, services\.status/)
  const json = ha(['config', 'check', '--config', config, '--json']).json!
  assert.deepEqual(json.result.needs.map((n: {command: string; missing: string[]}) => [n.command, n.missing]), [
    ['ha failover', ['services.start', 'services.stop', 'services.status']],
    ['ha rejoin', ['services.stop', 'services.status']],
  ])
  assert.equal(json.warnings.length, 4, 'two needs, and the example\'s key that is not on this machine (once per node)')

  writeFileSync(config, example)
  const full = ha(['config', 'check', '--config', config, '--json']).json!
  assert.deepEqual(full.result.needs, [])
})

/** Each: the example changed in one place, the field it names, its line, and the words that say why. */
const neverWork: Array<[string, (text: string) => string, string, string, RegExp]> = [
  ['both nodes with one hostname', (s) => s.replace('hostname: ctl-b', 'hostname: CTL-A'), 'nodes.secondary.hostname', 'hostname: CTL-A', /is CTL-A, the same as nodes\.primary\.hostname/],
  ['both nodes at one ssh host', (s) => s.replace('host: 198.18.0.3', 'host: 198.18.0.2'), 'nodes.secondary.ssh.host', 'host: 198.18.0.2', /is 198\.18\.0\.2 port 22, the same as nodes\.primary\.ssh: both nodes would be one machine/],
  [
    'both nodes at one ssh host through a YAML anchor',
    (s) => s.replace('    ssh:\n      host: 198.18.0.2', '    ssh: &reach\n      host: 198.18.0.2').replace(/ {4}ssh:\n {6}host: 198\.18\.0\.3\n {6}user: root\n {6}identity_file: \/root\/\.ssh\/ha_ed25519\n/, '    ssh: *reach\n'),
    'nodes.secondary.ssh.host',
    'ssh: *reach',
    /the same as nodes\.primary\.ssh/,
  ],
  ['one service IP twice', (s) => s.replace(/( {2}- address: 198\.18\.1\.10\/24\n {4}interface: eth0\n)/, '$1  - address: 198.18.1.10/25\n    interface: eth1\n'), 'service_ips.1.address', 'address: 198.18.1.10/25', /198\.18\.1\.10 is also service_ips\.0\.address/],
  ['a service IP that is a node\'s ssh address', (s) => s.replace('198.18.1.10/24', '198.18.0.3/24'), 'service_ips.0.address', 'address: 198.18.0.3/24', /198\.18\.0\.3 is nodes\.secondary\.ssh\.host: ha reaches secondary at it/],
  ['verify.http that is not http', (s) => s.replace(/( {2})verify:\n(?: {4}.*\n)+/, '$1verify:\n    http: ftp://198.18.1.10/\n'), 'failover.verify.http', 'http: ftp://', /must be an http:\/\/ or https:\/\/ URL/],
  ['a program that is not a full path', (s) => s.replace('start: [/etc/init.d/xvm, start]', 'start: [xvm-ctl, start]'), 'services.start.0', 'start: [xvm-ctl', /"xvm-ctl" is not an absolute path: ha runs it on the node over ssh and from cron, whose PATH is short/],
]

for (const [name, change, field, needle, why] of neverWork) {
  test(`can never work, so not valid: ${name}`, (t) => {
    const dir = tempDir(t)
    const config = join(dir, 'ha.yaml')
    const text = change(example)
    assert.notEqual(text, example, 'the change applies')
    writeFileSync(config, text)
    const r = ha(['config', 'check', '--config', config])
    assert.equal(r.status, 2, r.stdout + r.stderr)
    assert.doesNotMatch(r.stdout, /valid:/)
    const line = lineOf(text, needle)
    assert.match(r.stderr, new RegExp(`${config}:${line}: ${field.replaceAll('.', '\\.')}: `))
    assert.match(r.stderr, why)
    assert.equal(readFileSync(config, 'utf8'), text, 'nothing was changed')
  })
}

test('an identity_file group or others can read is refused; one not on this machine is a warning naming it', (t) => {
  const dir = tempDir(t)
  const key = join(dir, 'ha_ed25519')
  writeFileSync(key, '-----BEGIN OPENSSH PRIVATE KEY-----\n')
  chmodSync(key, 0o644)
  const config = join(dir, 'ha.yaml')
  const text = example.replaceAll('/root/.ssh/ha_ed25519', key)
  writeFileSync(config, text)
  const r = ha(['config', 'check', '--config', config])
  assert.equal(r.status, 2, r.stdout + r.stderr)
  const firstLine = text.split('\n').findIndex((l) => l.includes(`identity_file: ${key}`)) + 1
  assert.match(r.stderr, new RegExp(`${config}:${firstLine}: nodes\\.primary\\.ssh\\.identity_file: UNPROTECTED PRIVATE KEY FILE: permissions 0644`))
  assert.match(r.stderr, new RegExp(`${config}:${lineOf(text, `identity_file: ${key}`)}: nodes\\.secondary\\.ssh\\.identity_file: UNPROTECTED.*; chmod 600 ${key}`))
  chmodSync(key, 0o600)
  assert.equal(ha(['config', 'check', '--config', config]).status, 0)

  writeFileSync(config, example.replaceAll('/root/.ssh/ha_ed25519', join(dir, 'absent')))
  const absent = ha(['config', 'check', '--config', config])
  assert.equal(absent.status, 0, absent.stderr)
  assert.match(absent.stderr, new RegExp(`warning: nodes\\.primary\\.ssh\\.identity_file: cannot read identity_file ${dir}/absent: ENOENT.* on this machine`))
})

test('storage kind mount without storage.device: ha failover refuses to plan mount -t ext4 "", and config check says ha failover needs it', (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'ha.yaml')
  const text = example.replace(/ {2}device: \/dev\/disk\/by-label\/xvm\n/, '')
  assert.notEqual(text, example)
  writeFileSync(config, text)
  const plan = ha(['failover', '--plan', '--from', 'primary', '--config', config])
  assert.equal(plan.status, 2, plan.stdout)
  assert.doesNotMatch(plan.stdout, /mount -t ext4 ""/)
  assert.match(plan.stderr, new RegExp(`${config}: storage\\.device not set: ha failover needs it, as it mounts storage\\.device at /var/opt/sun/xvm on the node taking over \\(storage\\.kind mount\\)`))
  // ha rejoin only unmounts: it needs no device.
  assert.equal(ha(['rejoin', 'secondary', '--plan', '--config', config]).status, 0)

  const r = ha(['config', 'check', '--config', config, '--json']).json!
  assert.equal(r.status, 0)
  assert.deepEqual(r.result.needs.map((n: {command: string; missing: string[]}) => [n.command, n.missing]), [['ha failover', ['storage.device']]])
  assert.ok(r.warnings.some((w) => /^ha failover needs storage\.device, which is not set/.test(w)), r.warnings.join('\n'))
})

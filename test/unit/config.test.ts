import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {exampleConfigPath, parseConfig} from '../../src/config/load.js'
import {configPathFrom} from '../../src/config/path.js'
import {ConfigError} from '../../src/core/errors.js'
import {repoRoot} from '../helpers/cli.js'

const minimal = ['data_dir: /var/opt/sun/xvm', 'nodes:', '  primary:', '    hostname: a', '  secondary:', '    hostname: b', ''].join('\n')

const failsWith = (text: string, expected: RegExp) =>
  assert.throws(() => parseConfig(text, '/etc/ha/ha.yaml'), (error: unknown) => {
    assert.ok(error instanceof ConfigError)
    assert.equal(error.exitCode, 2)
    assert.match(error.message, expected)
    return true
  })

test('the example config documents every key and loads as it is', () => {
  const config = parseConfig(readFileSync(join(repoRoot, 'templates/ha.example.yaml'), 'utf8'), 'ha.example.yaml')
  assert.equal(config.nodes.primary.ssh?.host_key_policy, 'strict')
  assert.equal(config.backup.max_age, 7200)
  assert.equal(config.service_ips[0].address, '198.18.1.10/24')
})

test('defaults: version file and key from the seed, root /, keep 24', () => {
  const config = parseConfig(minimal, 'x.yaml')
  assert.equal(config.version_file, '/n1gc-setup/.version.properties')
  assert.equal(config.version_key, 'product.version')
  assert.equal(config.nodes.primary.root, '/')
  assert.equal(config.backup.keep, 24)
  assert.equal(config.backup.manifest, 'builtin:opscenter')
})

test('errors name the file, the line and the field', () => {
  failsWith(minimal.replace('    hostname: b', '    hostname: b\n    colour: blue'), /^\/etc\/ha\/ha\.yaml:7: nodes\.secondary\.colour: unknown key "colour"/)
  failsWith(minimal.replace('    hostname: a', '    hostname: 12'), /ha\.yaml:4: nodes\.primary\.hostname: must be string, not number/)
  failsWith(minimal.replace('  secondary:\n    hostname: b\n', ''), /ha\.yaml:2: nodes\.secondary: is required but missing/)
  failsWith(`${minimal}backup:\n  max_age: soon\n`, /ha\.yaml:8: backup\.max_age: "soon" is not a duration/)
  failsWith(minimal.replace('data_dir: /var/opt/sun/xvm', 'data_dir: var/opt'), /ha\.yaml:1: data_dir: must be an absolute path/)
  failsWith(`${minimal}service_ips:\n  - {address: 198.18.0.1, interface: eth0}\n`, /service_ips\.0\.address: must be an IPv4 address with prefix length/)
  failsWith('data_dir: /x\ndata_dir: /y\n', /ha\.yaml:\d+: not valid YAML/)
  failsWith('- a\n- b\n', /ha\.yaml:1: the config must be a mapping/)
  failsWith(`${minimal}backup:\n  include: [/etc/hostid]\n`, /backup\.include\.0: names a machine identity file/)
})

test('the config is found at --config, then HA_CONFIG, then /etc/ha/ha.yaml', () => {
  assert.equal(configPathFrom('/a.yaml', {HA_CONFIG: '/b.yaml'}), '/a.yaml')
  assert.equal(configPathFrom(undefined, {HA_CONFIG: '/b.yaml'}), '/b.yaml')
  assert.equal(configPathFrom(undefined, {}), '/etc/ha/ha.yaml')
})

test('service IPs must be real IPv4 CIDRs: octets 0-255, prefix 1-32', () => {
  const ip = (address: string, iface = 'eth0') => `${minimal}service_ips:\n  - address: ${address}\n    interface: ${iface}\n`
  failsWith(ip('999.18.1.10/99'), /ha\.yaml:8: service_ips\.0\.address: "999\.18\.1\.10\/99": 999 is not an octet/)
  failsWith(ip('198.18.1.10/33'), /ha\.yaml:8: service_ips\.0\.address: "198\.18\.1\.10\/33": \/33 is not a prefix length \(1-32\)/)
  failsWith(ip('198.18.1.10/0'), /\/0 is not a prefix length/)
  failsWith(ip('198.018.1.10/24'), /018 is not an octet/)
  failsWith(ip('198.18.1/24'), /service_ips\.0\.address: must be an IPv4 address with prefix length/)
  failsWith(ip('198.18.1.10/24', 'eth0/1'), /ha\.yaml:9: service_ips\.0\.interface: must be a network interface name/)
  failsWith(ip('198.18.1.10/24', 'a-very-long-interface'), /service_ips\.0\.interface: must be a network interface name/)
  for (const good of ['198.18.1.10/24', '0.0.0.0/32', '255.255.255.255/1', '10.0.0.1/8']) {
    assert.equal(parseConfig(ip(good), 'x.yaml').service_ips[0].address, good)
  }
})

test('backup.dir stays inside the data directory, so archives travel with the shared storage', () => {
  const dir = (value: string) => `${minimal}backup:\n  dir: ${value}\n`
  failsWith(dir('/var/backups/ha'), /ha\.yaml:8: backup\.dir: must be relative to data_dir/)
  failsWith(dir('../outside'), /ha\.yaml:8: backup\.dir: must stay inside data_dir: no "\.\."/)
  failsWith(dir('.ha/../../outside'), /backup\.dir: must stay inside data_dir/)
  failsWith(dir('"."'), /backup\.dir: must name a folder inside data_dir/)
  failsWith(dir('./'), /backup\.dir: must name a folder inside data_dir/)
  assert.equal(parseConfig(dir('archives/ha'), 'x.yaml').backup.dir, 'archives/ha')
  assert.equal(parseConfig(dir('..archives'), 'x.yaml').backup.dir, '..archives', 'a name that only starts with dots is inside')
})

test('config errors point to the installed example by its absolute path', () => {
  assert.ok(exampleConfigPath.startsWith('/'))
  assert.equal(exampleConfigPath, join(repoRoot, 'templates/ha.example.yaml'))
  assert.throws(() => parseConfig(minimal.replace('    hostname: a', '    hostname: 12'), '/etc/ha/ha.yaml'), (error: unknown) => {
    assert.ok(error instanceof ConfigError)
    assert.deepEqual(error.actions, [`fix /etc/ha/ha.yaml; ${exampleConfigPath} documents every key`])
    return true
  })
})

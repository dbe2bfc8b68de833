import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chownSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {parseConfig} from '../../src/config/load.js'
import {bootConfigDrivers, detectBootConfig} from '../../src/drivers/boot-config/index.js'
import {LocalHost} from '../../src/hosts/local-host.js'
import {writeScript} from '../../src/hosts/ssh-host.js'

/**
 * How a boot configuration edit is written and chosen: the config key and its message, the old
 * file's owner and mode kept (over ssh and locally), restorecon run only where the node has it,
 * and which system ha init and ha check tell a node uses.
 */
const base = 'data_dir: /d\nnodes:\n  primary: {hostname: a}\n  secondary: {hostname: b}\n'

test('boot_config.kind: ifupdown unless set; a wrong one names the file, the line, the key and the choices', () => {
  assert.equal(parseConfig(base, 'x.yaml').boot_config.kind, 'ifupdown')
  assert.equal(parseConfig(`${base}boot_config: {kind: netplan}\n`, 'x.yaml').boot_config.kind, 'netplan')
  assert.throws(() => parseConfig(`${base}boot_config:\n  kind: wicked\n`, '/etc/ha/ha.yaml'), /\/etc\/ha\/ha\.yaml:6: boot_config\.kind: must be ifupdown \(\/etc\/network\/interfaces\), networkmanager \(\/etc\/NetworkManager\/system-connections\/\*\.nmconnection\), ifcfg \(\/etc\/sysconfig\/network-scripts\/ifcfg-\*\) or netplan \(\/etc\/netplan\/\*\.yaml\)/)
  assert.throws(() => parseConfig(`${base}boot_config: {kind: netplan, file: /etc/netplan/x.yaml}\n`, 'x.yaml'), /x\.yaml:5: boot_config\.file: unknown key "file"/)
})

/** A folder with a file owned by someone else, and a fake restorecon that notes what it was asked. */
function setUp(t: {after: (fn: () => void) => void}) {
  const dir = mkdtempSync(join(tmpdir(), 'ha-boot-write-'))
  t.after(() => rmSync(dir, {force: true, recursive: true}))
  const file = join(dir, 'etc/eth0.nmconnection')
  spawnSync('mkdir', ['-p', join(dir, 'etc'), join(dir, 'bin')])
  writeFileSync(file, 'old\n', {mode: 0o600})
  chownSync(file, 4321, 4322)
  const log = join(dir, 'restorecon.log')
  writeFileSync(join(dir, 'bin/restorecon'), `#!/bin/sh\necho "$@" >>${log}\n`, {mode: 0o755})
  return {bin: join(dir, 'bin'), dir, file, log}
}

test('over ssh: the write keeps the old owner and mode, and runs restorecon on the file only where there is one', {skip: process.getuid?.() === 0 ? false : 'needs root (chown)'}, (t) => {
  const {bin, file, log} = setUp(t)
  const write = (path: string, relabel: string) => spawnSync('sh', ['-c', writeScript, 'ha-write', file, '0600', '4321:4322', relabel], {encoding: 'utf8', env: {PATH: path}, input: 'new\n'})
  const without = write('/usr/bin:/bin', 'relabel')
  assert.equal(without.status, 0, without.stderr)
  assert.equal(readFileSync(file, 'utf8'), 'new\n')
  const st = statSync(file)
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [4321, 4322, 0o600])
  assert.ok(!existsSync(log), 'no restorecon here: nothing ran, nothing failed')
  const withIt = write(`${bin}:/usr/bin:/bin`, 'relabel')
  assert.equal(withIt.status, 0, withIt.stderr)
  assert.equal(readFileSync(log, 'utf8'), `-- ${file}\n`)
  assert.equal(write(`${bin}:/usr/bin:/bin`, '').status, 0)
  assert.equal(readFileSync(log, 'utf8'), `-- ${file}\n`, 'not asked to relabel: not run')
})

test('locally: the same owner, mode and restorecon', {skip: process.getuid?.() === 0 ? false : 'needs root (chown)'}, async (t) => {
  const {bin, dir, file, log} = setUp(t)
  const host = new LocalHost('primary', dir, 10_000)
  const path = process.env.PATH
  process.env.PATH = `${bin}:${path}`
  try {
    await host.writeFile('/etc/eth0.nmconnection', 'new\n', 0o600, {owner: {gid: 4322, uid: 4321}, relabel: true})
  } finally {
    process.env.PATH = path
  }

  const st = statSync(file)
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777, readFileSync(file, 'utf8')], [4321, 4322, 0o600, 'new\n'])
  assert.equal(readFileSync(log, 'utf8'), `-- ${file}\n`)
})

test('the system a node uses is the one whose files configure the service interface; none, when none does', () => {
  const files = {
    ifcfg: [],
    ifupdown: [{path: '/etc/network/interfaces', text: 'auto lo\niface lo inet loopback\n'}],
    netplan: [],
    networkmanager: [{path: '/etc/NetworkManager/system-connections/Wired connection 1.nmconnection', text: '[connection]\nid=w\ninterface-name=eth0\n[ipv4]\nmethod=auto\n'}],
  }
  assert.deepEqual(detectBootConfig(bootConfigDrivers, files, ['eth0']), [{files: ['/etc/NetworkManager/system-connections/Wired connection 1.nmconnection'], kind: 'networkmanager'}])
  assert.deepEqual(detectBootConfig(bootConfigDrivers, files, ['eth1']), [])
  const both = {...files, ifupdown: [{path: '/etc/network/interfaces', text: 'iface eth0 inet dhcp\n'}]}
  assert.deepEqual(detectBootConfig(bootConfigDrivers, both, ['eth0']).map((f) => f.kind), ['networkmanager', 'ifupdown'])
})

import assert from 'node:assert/strict'
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, test} from 'node:test'

import {type Config, configSchema, storageSchema} from '../../src/config/schema.js'
import {bootConfigDriver, filesHold, ownsPath} from '../../src/drivers/boot-config/index.js'
import {ifupdown} from '../../src/drivers/boot-config/ifupdown.js'
import {storageDriver} from '../../src/drivers/storage/index.js'

const src = join(dirname(fileURLToPath(import.meta.url)), '../../src')
const sources = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : []
  })

const configWith = (storage: Record<string, unknown>): Config =>
  configSchema.parse({
    data_dir: '/var/opt/sun/xvm',
    nodes: {primary: {hostname: 'a'}, secondary: {hostname: 'b'}},
    service_ips: [{address: '198.18.1.10/24', interface: 'eth0'}],
    storage,
  })

describe('storage drivers', () => {
  test('every storage.kind the schema allows has its driver, chosen by storageDriver', () => {
    const kinds = storageSchema.shape.kind.removeDefault().options
    assert.deepEqual([...kinds].sort(), ['manual', 'mount', 'none', 'zfs'])
    for (const kind of kinds) assert.equal(storageDriver(configWith({kind, pool: 'p'})).kind, kind)
  })

  test('mount: umount and mount -t, an fstab line, fuser first, the device rule when storage.device is set', () => {
    const d = storageDriver(configWith({device: '/dev/sdb1', kind: 'mount'}))
    assert.deepEqual(d.commands, {attach: ['mount', '-t', 'ext4', '/dev/sdb1', '/var/opt/sun/xvm'], detach: ['umount', '/var/opt/sun/xvm'], holdersFirst: true})
    assert.equal(d.boot?.path, '/etc/fstab')
    assert.equal(d.boot?.adding, 'add /dev/sdb1 /var/opt/sun/xvm ext4')
    assert.equal(d.boot?.removing, 'remove the line mounting /var/opt/sun/xvm')
    assert.equal(d.boot?.added(''), '/dev/sdb1 /var/opt/sun/xvm ext4 defaults 0 0\n')
    assert.ok(d.boot?.holds('/dev/sdb1 /var/opt/sun/xvm/ ext4 defaults 0 0\n'))
    assert.equal(d.boot?.removed('proc /proc proc defaults 0 0\n/dev/sdb1 /var/opt/sun/xvm ext4 defaults 0 0\n'), 'proc /proc proc defaults 0 0\n')
    assert.deepEqual(d.probeArgv('/r/var/opt/sun/xvm'), ['findmnt', '-J', '-b', '-o', 'TARGET,SOURCE,FSTYPE,SIZE,USED,AVAIL', '--mountpoint', '/r/var/opt/sun/xvm'])
    assert.deepEqual([d.tracked, d.operatorMoves], [true, false])
    const held = {detail: {fstype: 'ext4', source: '/dev/sdc1'}, held: true as const}
    assert.deepEqual(d.device?.mismatch('/var/opt/sun/xvm', held, '/dev/sdb1', '/dev/sdc1'), {error: '/var/opt/sun/xvm is mounted from /dev/sdc1, not from storage.device /dev/sdb1'})
    assert.equal(d.device?.mismatch('/var/opt/sun/xvm', held, '/dev/sdb1', '/dev/sdb1'), undefined)
    assert.equal(storageDriver(configWith({kind: 'mount'})).device, undefined)
    assert.deepEqual(storageDriver(configWith({fstype: 'xfs', kind: 'mount'})).heldProblem({fstype: 'ext4'}), {action: 'check storage.fstype in the config, or what is mounted at data_dir', why: 'but as ext4, not xfs'})
  })

  test('zfs: zpool export and import, nothing at boot, no fuser; a missing pool is a config problem', () => {
    const d = storageDriver(configWith({kind: 'zfs', pool: 'xvmpool'}))
    assert.deepEqual(d.commands, {attach: ['zpool', 'import', 'xvmpool'], detach: ['zpool', 'export', 'xvmpool'], holdersFirst: false})
    assert.equal(d.boot, undefined)
    assert.equal(d.device, undefined)
    assert.deepEqual(d.probeArgv('/x'), ['zpool', 'list', '-H', '-o', 'name,health', 'xvmpool'])
    assert.deepEqual(d.interpret(1, '', "cannot open 'xvmpool': no such pool\n"), {held: false})
    assert.equal(d.configProblem(), undefined)
    assert.equal(storageDriver(configWith({kind: 'zfs'})).configProblem()?.summary, 'storage.kind is zfs but storage.pool is not set')
  })

  test('manual: the operator moves it, ha watches with findmnt; none: nothing moves, nothing is tracked', () => {
    const manual = storageDriver(configWith({kind: 'manual'}))
    assert.deepEqual([manual.tracked, manual.operatorMoves, manual.commands, manual.boot, manual.device], [true, true, undefined, undefined, undefined])
    assert.equal(manual.probeArgv('/x')[0], 'findmnt')
    assert.equal(manual.words.held({fstype: 'ext4', source: '/dev/sdb1'}), ' from /dev/sdb1 (ext4)')
    const none = storageDriver(configWith({device: '/dev/sdb1', kind: 'none'}))
    assert.deepEqual([none.tracked, none.operatorMoves, none.commands, none.boot, none.device], [false, false, undefined, undefined, undefined])
  })
})

describe('boot-config drivers', () => {
  test('ifupdown is chosen by default: /etc/network/interfaces, alias stanzas', () => {
    const config = configWith({kind: 'mount'})
    const d = bootConfigDriver(config)
    assert.equal(d, ifupdown)
    const ip = config.service_ips[0]
    assert.equal(d.placeFor(ip, 'add'), '/etc/network/interfaces')
    assert.equal(d.placeFor(ip, 'remove'), '/etc/network/interfaces')
    assert.ok(ownsPath(d, '/etc/network/interfaces'))
    assert.ok(!ownsPath(d, '/etc/fstab'))
    assert.equal(d.adding(ip), 'add 198.18.1.10/24 on eth0')
    assert.equal(d.removing(ip), 'remove the stanza with address 198.18.1.10/24')
    // A missing file is an empty one: the alias stanza creates it.
    const file = d.fileFor([], ip)
    assert.deepEqual(file, {path: '/etc/network/interfaces', text: ''})
    const text = d.withAddress(file, ip)
    assert.equal(text, 'auto eth0:0\niface eth0:0 inet static\n    address 198.18.1.10/24\n')
    assert.ok(filesHold(d, [{path: file.path, text}], '198.18.1.10'))
    assert.deepEqual(d.addresses({path: file.path, text}), [{address: '198.18.1.10/24', interface: 'eth0'}])
    assert.equal(d.withoutAddress({path: file.path, text}, ip.address), '')
  })

  test('boot_config.kind chooses the driver; each reads its own directory', () => {
    for (const [kind, dir] of [['networkmanager', '/etc/NetworkManager/system-connections'], ['ifcfg', '/etc/sysconfig/network-scripts'], ['netplan', '/etc/netplan'], ['ifupdown', '/etc/network']] as const) {
      const config = {...configWith({kind: 'mount'}), boot_config: {kind}}
      const d = bootConfigDriver(config)
      assert.equal(d.name, kind)
      assert.equal(d.dir, dir)
    }
  })
})

describe('the drivers layer', () => {
  test('a storage kind is chosen only in src/drivers (and named by the config schema and the init wizard)', () => {
    const allowed = ['drivers/', 'config/', 'init/']
    const kindTest = /\bkind\s*[!=]==?\s*'(mount|zfs|manual|none)'|storage\.kind\s*[!=]==?/
    const found = sources(src)
      .filter((f) => !allowed.some((a) => relative(src, f).startsWith(a)))
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').map((line, i) => ({line, where: `${relative(src, f)}:${i + 1}`})))
      .filter(({line}) => kindTest.test(line))
      .map(({where}) => where)
    assert.deepEqual(found, [])
  })

  test('outside src/drivers only the choosers, the interfaces, the local probe and what the Filesystem agent would unmount are imported, never one driver', () => {
    const entry = /from '[./]*drivers\/(storage|boot-config)\/(?!index\.js|driver\.js|attachment\.js|filesystem-stop\.js)[^']+'/
    const found = sources(src)
      .filter((f) => !relative(src, f).startsWith('drivers/'))
      .filter((f) => entry.test(readFileSync(f, 'utf8')))
      .map((f) => relative(src, f))
    assert.deepEqual(found, [])
  })

  test('drivers sit below the steps, check, failover, pair, restore, backup and the CLI: they never import them', () => {
    const above = /from '(\.\.\/)+(steps|check|failover|pair|restore|backup|cli|commands)\//
    const found = sources(join(src, 'drivers'))
      .filter((f) => above.test(readFileSync(f, 'utf8')))
      .map((f) => relative(src, f))
    assert.deepEqual(found, [])
  })
})

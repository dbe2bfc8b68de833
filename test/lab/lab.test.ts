import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {parseAccounts} from '../../src/facts/accounts.js'
import {loadConfig} from '../../src/config/load.js'
import {LockedError} from '../../src/core/errors.js'
import {readProductVersion} from '../../src/facts/host-facts.js'
import {
  labAddServiceIp,
  labBoot,
  labDown,
  labName,
  labNetns,
  labPaths,
  labRegenerateHostKey,
  labSetVersion,
  labStatus,
  labUp,
  nodePaths,
} from '../../src/lab/lab.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

// The lab's namespaces are fixed names, so this suite owns the machine's lab while it runs; its
// own lab directory keeps a developer's /var/lib/ha-lab (and its logs) untouched.
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = `/tmp/ha-lab-test-${process.pid}`
const lab = labPaths(labDir)
const addressOf = {primary: '198.18.0.2', secondary: '198.18.0.3'} as const

interface Ran {
  status: number | null
  stderr: string
  stdout: string
}

function sh(argv: string[], netns?: string, timeoutMs = 15_000): Ran {
  const full = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv
  const r = spawnSync(full[0], full.slice(1), {encoding: 'utf8', timeout: timeoutMs})
  return {status: r.status, stderr: r.stderr ?? '', stdout: r.stdout ?? ''}
}

/** The system OpenSSH client, from the admin side, exactly as an operator would use it. */
function ssh(node: 'primary' | 'secondary', command: string, connectTimeout = 5): Ran {
  return sh(
    [
      'ssh',
      '-i', lab.adminKey,
      '-o', `UserKnownHostsFile=${lab.knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
      '-o', `ConnectTimeout=${connectTimeout}`,
      `root@${addressOf[node]}`,
      command,
    ],
    labNetns.admin,
    (connectTimeout + 10) * 1000,
  )
}

function addresses(node: 'primary' | 'secondary'): string[] {
  const r = sh(['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'], labNetns[node])
  assert.equal(r.status, 0, r.stderr)
  return [...r.stdout.matchAll(/\sinet\s+(\S+)/g)].map((m) => m[1])
}

function macOf(node: 'primary' | 'secondary'): string {
  const r = sh(['ip', '-o', 'link', 'show', 'dev', 'eth0'], labNetns[node])
  return (r.stdout.match(/link\/ether\s+(\S+)/)?.[1] ?? '').toUpperCase()
}

/** Polls `probe` every 300 ms until it returns true or `seconds` pass. */
async function within(seconds: number, probe: () => boolean): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    if (probe()) return true
    await sleep(300)
  }

  return false
}

function leftovers(pids: number[]): string[] {
  const found: string[] = []
  const netns = sh(['ip', 'netns', 'list']).stdout
  const ours = Object.values(labNetns).filter((n) => netns.split('\n').some((line) => line.split(' ')[0] === n))
  if (ours.length > 0) found.push(`namespaces: ${ours.join(', ')}`)
  const mounts = sh(['findmnt', '-rn', '-o', 'TARGET']).stdout.split('\n').filter((m) => m.startsWith(`${labDir}/`))
  if (mounts.length > 0) found.push(`mounts: ${mounts.join(', ')}`)
  // The storage, the decoy and both nodes' disks.
  const loops = sh(['losetup', '-a']).stdout.split('\n').filter((line) => line.includes(`${labDir}/`)).join('; ')
  if (loops) found.push(`loop devices: ${loops}`)
  const alive = pids.filter((pid) => existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(spawnSync('cat', [`/proc/${pid}/stat`], {encoding: 'utf8'}).stdout))
  if (alive.length > 0) found.push(`processes: ${alive.join(', ')}`)
  // Also any process still naming the lab directory, wherever it runs (even a deleted namespace).
  const strays = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${labDir}/`)
      } catch {
        return false
      }
    })
  if (strays.length > 0) found.push(`processes naming ${labDir}: ${strays.join(', ')}`)
  return found
}

describe('the two-controller lab', {skip}, () => {
  before(async () => {
    await labUp({labDir})
  })
  after(async () => {
    await labDown({labDir}).catch(() => {})
    sh(['rm', '-rf', labDir])
  })

  it('lets the admin side reach each controller over ssh, each a host of its own: hostname, /etc, uids, init', () => {
    for (const [node, name, uid] of [['primary', 'ctl-a', 901], ['secondary', 'ctl-b', 1901]] as const) {
      const r = ssh(node, 'hostname; cat /etc/hostname; id -u xvm; cat /proc/1/cmdline | tr "\\0" " "; echo; ls /')
      assert.equal(r.status, 0, `ssh to ${node}: ${r.stderr}`)
      const [hostname, etcHostname, xvmUid, init, ...slash] = r.stdout.trim().split('\n')
      assert.equal(hostname, name)
      assert.equal(etcHostname, name)
      assert.equal(Number(xvmUid), uid)
      assert.equal(init.trim(), '/bin/sh /sbin/init', 'PID 1 is the node\'s own init')
      assert.ok(!slash.includes('.old-root'), `the machine's / is gone from the node: ${slash.join(' ')}`)
      // Its own process table: a handful of processes, none of the machine's or the other node's.
      const ps = ssh(node, 'ps -e -o args=').stdout.trim().split('\n')
      assert.ok(ps.length < 15, ps.join(' / '))
      assert.ok(!ps.some((args) => args.includes(labDir)), `the lab's own processes (power supervisors) are not in the node: ${ps.join(' / ')}`)
    }
  })

  it('runs sshd the way Debian does: StrictModes on, root\'s authorized_keys, host key from the node\'s /etc/ssh', () => {
    const config = ssh('primary', '/usr/sbin/sshd -T | grep -E "^(strictmodes|authorizedkeysfile|hostkey|usepam) "')
    assert.equal(config.status, 0, config.stderr)
    assert.match(config.stdout, /^strictmodes yes$/m)
    assert.match(config.stdout, /^authorizedkeysfile \.ssh\/authorized_keys/m)
    assert.match(config.stdout, /^hostkey \/etc\/ssh\/ssh_host_ed25519_key$/m)
    // StrictModes is real: a world-writable authorized_keys locks root out, as on any Debian host
    // (Debian's sshd tolerates group-writable when the group holds only the owner).
    assert.equal(ssh('secondary', 'chmod o+w /root/.ssh/authorized_keys').status, 0)
    try {
      assert.notEqual(ssh('secondary', 'true').status, 0, 'sshd must refuse a world-writable authorized_keys')
    } finally {
      spawnSync('chmod', ['o-w', join(nodePaths(labDir, 'secondary').root, 'root/.ssh/authorized_keys')])
    }

    assert.equal(ssh('secondary', 'true').status, 0)
  })

  it('gives the service IP to the primary only', () => {
    assert.deepEqual(addresses('primary').sort(), ['198.18.0.100/24', '198.18.0.2/24'])
    assert.deepEqual(addresses('secondary'), ['198.18.0.3/24'])
  })

  it('configures no address outside 198.18.0.0/15 (besides loopback), and none at all in the machine\'s own namespace', () => {
    for (const netns of Object.values(labNetns)) {
      const r = sh(['ip', '-o', 'addr', 'show'], netns)
      assert.equal(r.status, 0, r.stderr)
      const found = [...r.stdout.matchAll(/\sinet6?\s+(\S+)/g)].map((m) => m[1])
      const outside = found.filter((a) => a !== '127.0.0.1/8' && !/^198\.1[89]\./.test(a))
      assert.deepEqual(outside, [], `${netns}: ${r.stdout}`)
    }

    const own = sh(['ip', '-o', 'addr', 'show'])
    assert.doesNotMatch(own.stdout, /\s198\.1[89]\./)
    assert.doesNotMatch(sh(['ip', '-o', 'link', 'show']).stdout, /ha-lab|veth-(primary|secondary)/)
  })

  it('lets arping -D from the secondary see the primary answering for the service IP', () => {
    const r = sh(['arping', '-D', '-c', '2', '-w', '3', '-I', 'eth0', '198.18.0.100'], labNetns.secondary)
    // arping -D exits 1 when someone answers: the address is in use.
    assert.equal(r.status, 1, r.stdout + r.stderr)
    assert.match(r.stdout.toUpperCase(), new RegExp(`\\[${macOf('primary')}\\]`))
  })

  it('answers on the service IP with the primary\'s hostname and the greeting from the shared storage', () => {
    const script = "fetch('http://198.18.0.100:8080/', {signal: AbortSignal.timeout(5000)}).then((r) => r.text()).then((t) => process.stdout.write(t))"
    const r = sh([process.execPath, '-e', script], labNetns.admin)
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), {greeting: 'hello from the shared storage', hostname: 'ctl-a'})
  })

  it('mounts the shared storage (ext4 on a loop device) in the primary only: the secondary and the machine do not see it', () => {
    const r = ssh('primary', 'findmnt -n -o FSTYPE,SOURCE --mountpoint /var/opt/sun/xvm')
    assert.equal(r.status, 0, `not mounted: ${r.stderr}`)
    const [fstype, source] = r.stdout.trim().split(/\s+/)
    assert.equal(fstype, 'ext4')
    // The node knows the shared disk as /dev/sdb, as a host knows a LUN: the machine's loop device of the lab's image.
    assert.equal(source, '/dev/sdb')
    const loop = sh(['losetup', '-j', lab.image]).stdout.split(':')[0]
    assert.equal(ssh('primary', `stat -c %t:%T ${source}`).stdout.trim(), sh(['stat', '-c', '%t:%T', loop]).stdout.trim(), `the node's ${source} is the machine's ${loop}`)
    const other = ssh('secondary', 'findmnt -n --mountpoint /var/opt/sun/xvm; echo "status $?"; ls -A /var/opt/sun/xvm')
    assert.equal(other.stdout.trim(), 'status 1', 'the secondary sees neither the mount nor the files')
    assert.equal(sh(['findmnt', '-rn', '-S', loop]).stdout.trim(), '', 'the machine itself has nothing mounted from the storage')
  })

  it('gives the same account names different ids on the two controllers', async () => {
    assert.equal(ssh('primary', 'id -u oracle').stdout.trim(), '902')
    assert.equal(ssh('secondary', 'id -u oracle').stdout.trim(), '1750')
    const read = async (node: 'primary' | 'secondary', file: 'group' | 'passwd') =>
      parseAccounts(await readFile(join(nodePaths(labDir, node).root, 'etc', file), 'utf8'), file, file)
    for (const kind of ['passwd', 'group'] as const) {
      const a = await read('primary', kind)
      const b = await read('secondary', kind)
      for (const name of kind === 'passwd' ? ['xvm', 'oracle', 'pgsql'] : ['xvm', 'dba', 'pgsql']) {
        assert.ok(a.byName.has(name) && b.byName.has(name), `${kind} ${name} on both`)
        assert.notEqual(a.byName.get(name), b.byName.get(name), `${kind} ${name} has the same id on both`)
      }
    }
  })

  it('seeds the data directory with the primary\'s ids, a setuid file and a symlink', async () => {
    const r = ssh('primary', 'cd /var/opt/sun/xvm && stat -c "%n %u %a %F" service/greeting.txt bin/xvm-helper current')
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), ['service/greeting.txt 901 644 regular file', 'bin/xvm-helper 901 4755 regular file', 'current 902 777 symbolic link'])
  })

  it('writes a config ha accepts, whose nodes have equal product versions', async () => {
    const {config} = await loadConfig(lab.config)
    // A production config: each node's / is its own, reached over ssh, rebooted by its /sbin/reboot.
    assert.equal(config.nodes.primary.root, '/')
    assert.equal(config.nodes.secondary.root, '/')
    assert.deepEqual(config.nodes.secondary.reboot_command, ['/sbin/reboot'])
    assert.equal(config.nodes.secondary.ssh?.host, '198.18.0.3')
    assert.deepEqual(config.service_ips, [{address: '198.18.0.100/24', interface: 'eth0'}])
    assert.equal(config.storage.device, '/dev/sdb')
    const versions = await Promise.all(
      (['primary', 'secondary'] as const).map((n) => readProductVersion(nodePaths(labDir, n).root, config.version_file, config.version_key)),
    )
    assert.deepEqual(versions, ['2.1.0.1234', '2.1.0.1234'])
  })

  it('can make both controllers hold the service IP, visible on the wire as two MACs', async () => {
    await labAddServiceIp('secondary')
    try {
      assert.ok(addresses('secondary').includes('198.18.0.100/24'))
      assert.ok(addresses('primary').includes('198.18.0.100/24'))
      const r = sh(['arping', '-c', '3', '-w', '4', '-I', 'ha-lab-br0', '198.18.0.100'], labNetns.admin)
      const macs = new Set([...r.stdout.toUpperCase().matchAll(/\[([0-9A-F:]{17})\]/g)].map((m) => m[1]))
      assert.deepEqual([...macs].sort(), [macOf('primary'), macOf('secondary')].sort(), r.stdout)
    } finally {
      sh(['ip', 'addr', 'del', '198.18.0.100/24', 'dev', 'eth0'], labNetns.secondary)
    }
  })

  it('can give the secondary a different product version', async () => {
    await labSetVersion('secondary', '2.1.0.1301', {labDir})
    const {config} = await loadConfig(lab.config)
    assert.equal(ssh('secondary', `grep ^product.version= ${config.version_file}`).stdout.trim(), 'product.version=2.1.0.1301')
    await labSetVersion('secondary', '2.1.0.1234', {labDir})
  })

  it('reboots the secondary through its reboot_command over ssh: ssh drops, then it is back with a new boot id and only its own address', async () => {
    const {config} = await loadConfig(lab.config)
    const before = (await labStatus({labDir})).nodes.secondary.boot_id
    // A runtime address (not in the node's network config) must not survive the reboot.
    await labAddServiceIp('secondary')
    const r = ssh('secondary', config.nodes.secondary.reboot_command.join(' '))
    assert.equal(r.status, 0, `reboot command: ${r.stderr}`)
    assert.ok(await within(10, () => ssh('secondary', 'true', 1).status !== 0), 'ssh to the secondary never dropped')
    assert.ok(await within(20, () => ssh('secondary', 'true', 2).status === 0), 'the secondary did not come back within 20 s')
    const after = ssh('secondary', 'cat /proc/sys/kernel/random/boot_id; hostname')
    const [bootId, hostname] = after.stdout.trim().split('\n')
    assert.notEqual(bootId, before)
    assert.equal(hostname, 'ctl-b')
    assert.deepEqual(addresses('secondary'), ['198.18.0.3/24'])
  })

  it('ha lab reboot kills every process of the primary and brings it back into service: new boot id, storage from its fstab, service answering', async () => {
    const bootId = () => ssh('primary', 'cat /proc/sys/kernel/random/boot_id').stdout.trim()
    const before = bootId()
    const machineBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    assert.notEqual(before, machineBootId, 'the node has a boot id of its own')
    // A session left running on the node must die with it.
    const pidsBefore = (await labStatus({labDir})).nodes.primary
    const r = ha(['lab', 'reboot', 'primary', '--down-seconds', '1', '--lab-dir', labDir, '--json'])
    assert.equal(r.status, 0, r.stderr)
    const after = bootId()
    assert.notEqual(after, before)
    assert.equal(r.json?.result.boot_id, after)
    assert.equal(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), machineBootId, 'the machine did not reboot')
    const now = (await labStatus({labDir})).nodes.primary
    for (const pid of [pidsBefore.init_pid, pidsBefore.sshd_pid, pidsBefore.service_pid]) assert.ok(pid && !existsSync(`/proc/${pid}`), `pid ${pid} survived the reboot`)
    assert.ok(now.service_running && now.sshd_running && now.holds_service_ip && now.data_dir_mounted, JSON.stringify(now))
  })

  it('stops and starts the service on the node over ssh, and refuses to start it where it cannot serve', () => {
    const fetchGreeting = () => sh([process.execPath, '-e', "fetch('http://198.18.0.100:8080/', {signal: AbortSignal.timeout(3000)}).then((r) => r.text()).then((t) => process.stdout.write(t))"], labNetns.admin)
    assert.equal(ssh('primary', '/etc/init.d/xvm stop').status, 0)
    assert.equal(ssh('primary', '/etc/init.d/xvm status').status, 3, 'LSB status: not running')
    assert.notEqual(fetchGreeting().status, 0, 'nothing answers while the service is stopped')
    const refused = ssh('secondary', '/etc/init.d/xvm start')
    assert.equal(refused.status, 1)
    assert.match(refused.stderr, /cannot start the service on ctl-b: it does not hold 198\.18\.0\.100\/24/)
    assert.equal(ssh('primary', '/etc/init.d/xvm start').status, 0)
    assert.equal(JSON.parse(fetchGreeting().stdout).hostname, 'ctl-a')
  })

  it('halts a controller over ssh until it is booted again', async () => {
    const r = ssh('primary', '/sbin/halt')
    assert.equal(r.status, 0, r.stderr)
    assert.ok(await within(10, () => ssh('primary', 'true', 1).status !== 0), 'the primary never went down')
    await sleep(1500)
    assert.notEqual(ssh('primary', 'true', 1).status, 0, 'a halted node must stay down')
    assert.deepEqual(addresses('primary'), [])
    const halted = await labStatus({labDir})
    assert.ok(halted.up && !halted.nodes.primary.running && halted.nodes.secondary.running, JSON.stringify(halted.nodes))
    // The primary's mount went with it, as in a crash: the secondary can mount the storage and read it.
    const device = (await loadConfig(lab.config)).config.storage.device!
    const taken = ssh('secondary', `mount -t ext4 ${device} /var/opt/sun/xvm && cat /var/opt/sun/xvm/service/greeting.txt && umount /var/opt/sun/xvm`)
    assert.equal(taken.status, 0, taken.stderr)
    assert.equal(taken.stdout.trim(), 'hello from the shared storage')
    await labBoot('primary', {labDir})
    assert.equal(ssh('primary', 'hostname').stdout.trim(), 'ctl-a')
    assert.ok((await labStatus({labDir})).nodes.primary.service_running)
  })

  it('can change a controller\'s host key, which strict ssh then refuses', async () => {
    const {public_key: key} = await labRegenerateHostKey('secondary', {labDir})
    const known = await readFile(lab.knownHosts, 'utf8')
    assert.ok(!known.includes(key.split(' ')[1]), 'known_hosts must still hold the old key')
    const r = ssh('secondary', 'true')
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/)
  })

  it('lets only one up run at a time (the other exits 11, touching nothing)', async () => {
    const results = await Promise.allSettled([labUp({labDir}), labUp({labDir})])
    const refused = results.filter((r) => r.status === 'rejected')
    assert.equal(refused.length, 1, JSON.stringify(results.map((r) => r.status)))
    const error = (refused[0] as PromiseRejectedResult).reason as LockedError
    assert.ok(error instanceof LockedError, String(error))
    assert.equal(error.exitCode, 11)
    assert.equal((await labStatus({labDir})).up, true)
  })

  it('refuses to act on a lab under another name than it was brought up with, changing nothing (two labs run side by side by name)', () => {
    const other = labName() === 'labx' ? 'laby' : 'labx'
    for (const args of [['status'], ['down'], ['up'], ['reboot', 'primary']]) {
      const r = ha(['lab', ...args, '--lab-dir', labDir, '--json'], {env: {HA_LAB_NAME: other}})
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(JSON.parse(r.stdout).error.message, new RegExp(`^lab ${labDir} was brought up as lab "${labName()}" \\(namespaces ha-${labName()}-\\*\\), and HA_LAB_NAME makes this one "${other}"`))
    }

    const bad = ha(['lab', 'status', '--lab-dir', labDir, '--json'], {env: {HA_LAB_NAME: 'Bad/Name'}})
    assert.equal(bad.status, 2, bad.stdout)
    assert.match(JSON.parse(bad.stdout).error.message, /^HA_LAB_NAME "Bad\/Name" is not a lab name/)
    for (const node of ['primary', 'secondary'] as const) assert.equal(ssh(node, 'true').status, 0, `${node} still up`)
  })

  it('recovers from a crash on the next up, and down leaves nothing behind', async () => {
    // A crashed lab: the secondary's power supervisor killed hard, the nodes and namespaces still there.
    const pid = Number(await readFile(nodePaths(labDir, 'secondary').supervisorPid, 'utf8'))
    process.kill(pid, 'SIGKILL')
    await labUp({labDir})
    for (const node of ['primary', 'secondary'] as const) assert.equal(ssh(node, 'true').status, 0, `ssh to ${node} after recovery`)
    const status = await labStatus({labDir})
    assert.ok(status.up && status.nodes.primary.service_running, JSON.stringify(status))
    const pids = [status.nodes.primary.init_pid, status.nodes.secondary.init_pid, status.nodes.primary.sshd_pid, status.nodes.secondary.sshd_pid, status.nodes.primary.service_pid].filter((p): p is number => p !== null)
    assert.equal(pids.length, 5, JSON.stringify(status.nodes))

    await labDown({labDir})
    // A node disk's loop device is detached with autoclear: it goes when the last process of the
    // node's killed mount namespace has gone, which under load can be a few seconds after down.
    assert.ok(await within(30, () => leftovers(pids).length === 0), leftovers(pids).join('\n'))
    assert.equal((await labStatus({labDir})).up, false)
  })
})

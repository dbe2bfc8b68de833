import {clusterConfig} from './cluster.js'
import {chmod, copyFile, mkdir, open, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {stringify} from 'yaml'

import {HaError} from '../core/errors.js'
import {nodeInitScript, powerScript} from './container.js'
import {libvirtUri} from './guests.js'
import {run} from './exec.js'
import {
  addressOnly,
  labAddresses,
  labBridge,
  labDataDir,
  labHostnames,
  labImageSize,
  labInterface,
  labNetns,
  type LabNode,
  labNodes,
  labPaths,
  labServiceIp,
  labServicePort,
  labVersionFile,
  labVeth,
  nodePaths,
} from './layout.js'
import {nodeEntryArgv} from './node.js'
import {writeNodeSystem} from './node-system.js'
import {checkoutDir} from './power.js'
import {seedDataDir, writeNodeRoot} from './roots.js'

/**
 * The pieces `ha lab up` builds, in order: the network, the shared storage (and a decoy device
 * for the wrong-device fault), each node's disk and root, the tools every node has installed,
 * and the configs (the admin side's and each node's /etc/ha/ha.yaml).
 */

export async function createNetwork(): Promise<void> {
  for (const netns of Object.values(labNetns)) {
    await run(['ip', 'netns', 'add', netns])
    // No IPv6: link-local and autoconfigured addresses would be addresses outside 198.18.0.0/15.
    // /proc/sys/net is the namespace of the process writing it; a kernel without IPv6 has no file.
    await run(['/bin/sh', '-c', 'for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do [ ! -e "$f" ] || echo 1 > "$f" || exit 1; done'], {netns})
    await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'])
  }

  const admin = labNetns.admin
  await run(['ip', '-n', admin, 'link', 'add', labBridge, 'type', 'bridge'])
  // No STP/forward delay: a port must pass traffic the moment a node boots.
  await run(['ip', '-n', admin, 'link', 'set', labBridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0'])
  await run(['ip', '-n', admin, 'addr', 'add', labAddresses.admin, 'dev', labBridge])
  await run(['ip', '-n', admin, 'link', 'set', labBridge, 'up'])
  for (const node of labNodes) {
    // Both ends are created directly inside lab namespaces: nothing ever appears in the root namespace.
    await run(['ip', '-n', admin, 'link', 'add', labVeth[node], 'type', 'veth', 'peer', 'name', labInterface, 'netns', labNetns[node]])
    await run(['ip', '-n', admin, 'link', 'set', labVeth[node], 'master', labBridge])
    await run(['ip', '-n', admin, 'link', 'set', labVeth[node], 'up'])
  }
}

export async function prepareNode(labDir: string, node: LabNode, storageDevice: string): Promise<void> {
  const paths = nodePaths(labDir, node)
  const lab = labPaths(labDir)
  await mkdir(paths.logDir, {recursive: true})
  await mkdir(paths.runDir, {recursive: true})
  await createNodeDisk(labDir, node)
  const adminPublicKey = await readFile(`${lab.adminKey}.pub`, 'utf8')
  await writeNodeRoot(paths.root, node, {adminPublicKey, storageDevice, storageFstype: 'ext4'})
  await writeNodeSystem(paths.root, {serviceArgv: nodeEntryArgv('service')})
  const key = join(paths.root, 'etc/ssh/ssh_host_ed25519_key')
  await mkdir(join(paths.root, 'etc/ssh/sshd_config.d'), {recursive: true})
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `root@${labHostnames[node]}`, '-f', key])
  // Root on each controller can reach the peer the way the admin does (a takeover run on a node).
  await copyFile(lab.adminKey, join(paths.root, 'root/.ssh/id_ed25519'))
  await chmod(join(paths.root, 'root/.ssh/id_ed25519'), 0o600)
}

export async function writeKnownHosts(labDir: string): Promise<void> {
  const lines = []
  for (const node of labNodes) {
    const pub = (await readFile(join(nodePaths(labDir, node).root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8')).trim()
    const [type, key] = pub.split(/\s+/)
    lines.push(`${addressOnly(labAddresses[node])} ${type} ${key}`)
  }

  await writeFile(labPaths(labDir).knownHosts, `${lines.join('\n')}\n`)
  for (const node of labNodes) await writeFile(join(nodePaths(labDir, node).root, 'root/.ssh/known_hosts'), `${lines.join('\n')}\n`, {mode: 0o644})
}

export async function createStorage(labDir: string): Promise<string> {
  const lab = labPaths(labDir)
  const handle = await open(lab.image, 'w', 0o600)
  try {
    // Sparse: 256 MB of address space, a few MB on disk.
    await handle.truncate(labImageSize)
  } finally {
    await handle.close()
  }

  await run(['mkfs.ext4', '-q', '-F', '-L', 'xvm', '-E', 'lazy_itable_init=1,lazy_journal_init=1', lab.image], {timeoutMs: 60_000})
  const {stdout} = await run(['losetup', '--find', '--show', lab.image])
  const device = stdout.trim()
  // Seeded through a mount on the machine that is gone before any node boots: from then on the
  // filesystem is mounted only inside a node (the primary's /etc/fstab).
  const seed = join(labDir, 'seed-mount')
  await mkdir(seed, {recursive: true})
  await run(['mount', '-t', 'ext4', device, seed])
  try {
    await rm(join(seed, 'lost+found'), {force: true, recursive: true})
    await seedDataDir(seed)
  } finally {
    await run(['umount', seed])
  }

  await rm(seed, {force: true, recursive: true})
  return device
}

/** Another small ext4 filesystem, for the wrong-device fault: mounted where the storage belongs. */
export async function createDecoy(labDir: string): Promise<string> {
  const image = join(labDir, 'decoy.img')
  await makeImage(image, 32 * 1024 * 1024, 'other')
  return (await run(['losetup', '--find', '--show', image])).stdout.trim()
}

/** Each node's / is a filesystem of its own (a disk, as on a real host), mounted on the machine at <node>/root. */
export async function createNodeDisk(labDir: string, node: LabNode): Promise<void> {
  const paths = nodePaths(labDir, node)
  const image = join(labDir, node, 'disk.img')
  await makeImage(image, 512 * 1024 * 1024, labHostnames[node])
  const device = (await run(['losetup', '--find', '--show', image])).stdout.trim()
  await mkdir(paths.root, {recursive: true})
  await run(['mount', '-t', 'ext4', device, paths.root])
  await rm(join(paths.root, 'lost+found'), {force: true, recursive: true})
  await chmod(paths.root, 0o755)
}

export async function makeImage(image: string, size: number, label: string): Promise<void> {
  const handle = await open(image, 'w', 0o600)
  try {
    await handle.truncate(size)
  } finally {
    await handle.close()
  }

  // -m 0: no blocks reserved for root, so "full" is full for everyone (the etc-full fault).
  await run(['mkfs.ext4', '-q', '-F', '-m', '0', '-L', label, '-E', 'lazy_itable_init=1,lazy_journal_init=1', image], {timeoutMs: 60_000})
}

/**
 * What every node has at /usr/local/sbin (bind-mounted read-only): `ha` itself, installed as on a
 * real controller, and the node's reboot and halt, which signal its init. Plus node-init, phase
 * one of a boot, run by the power supervisor on the machine.
 */
export async function writeLabTools(labDir: string): Promise<void> {
  const lab = labPaths(labDir)
  if (!process.execPath.startsWith('/usr/')) {
    throw new HaError(`lab: node (${process.execPath}) is not under /usr, so the lab's controllers (which see the machine's /usr only) cannot run it`, {
      actions: ['install Node.js from Debian or into /usr/local'],
    })
  }

  await mkdir(lab.sbinDir, {recursive: true})
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`
  const tools: Record<string, string> = {
    ha: `#!/bin/sh\n# ha lab: ha as installed on this controller (the checkout, read-only).\nexec ${quote(process.execPath)} ${quote(join(checkoutDir, 'bin/run.js'))} "$@"\n`,
    halt: powerScript('halt'),
    reboot: powerScript('reboot'),
  }
  for (const [name, text] of Object.entries(tools)) {
    await writeFile(join(lab.sbinDir, name), text, {mode: 0o755})
    await chmod(join(lab.sbinDir, name), 0o755)
  }

  await writeFile(lab.nodeInit, nodeInitScript, {mode: 0o755})
}

/**
 * The admin side's config (ha run in ha-lab-admin reaches both nodes over ssh) and each node's
 * /etc/ha/ha.yaml (ha run on the node itself, as cron does): a production config, `root: /` and
 * the default reboot_command (/sbin/reboot), only the ssh key paths differ.
 */
/** The guest a guest lab's ha.yaml lists: the lab's heartbeat guest, its disk in the folder both nodes see. */
export const labGuestConfig = {name: 'heartbeat1', priority: 10, move: 'live', disks: 'shared', shutdown: {mode: 'acpi', timeout: '20s'}}

export async function writeLabConfig(labDir: string, loopDevice: string, cluster = false, guests = false): Promise<void> {
  const lab = labPaths(labDir)
  const config = (keys: {identity_file: string; known_hosts: string}) => {
    const node = (name: LabNode) => ({
      hostname: labHostnames[name],
      root: '/',
      ssh: {host: addressOnly(labAddresses[name]), user: 'root', ...keys, host_key_policy: 'strict', connect_timeout: '5s', command_timeout: '30s'},
      // A guest lab: virsh on the node uses its own libvirtd; the other node's reaches it over TCP (guests.ts).
      ...(guests ? {libvirt: {uri: 'qemu:///system', migration_uri: libvirtUri(name)}} : {}),
    })
    return {
      data_dir: labDataDir,
      version_file: labVersionFile,
      version_key: 'product.version',
      nodes: {primary: node('primary'), secondary: node('secondary')},
      service_ips: [{address: labServiceIp, interface: labInterface}],
      storage: {kind: 'mount', device: loopDevice, fstype: 'ext4'},
      // The product is the node's /etc/init.d/xvm (node-system.ts); ha failover drives it.
      services: {start: ['/etc/init.d/xvm', 'start'], stop: ['/etc/init.d/xvm', 'stop'], status: ['/etc/init.d/xvm', 'status']},
      failover: {
        // A guest lab moves its guest live: the node taking over must not reboot after it arrived.
        ...(cluster || guests ? {mode: 'service'} : {}),
        reboot: true,
        reboot_timeout: '90s',
        backup_lock_wait: '2m',
        verify: {http: `http://${addressOnly(labServiceIp)}:${labServicePort}/`, status: 200},
      },
      // A cluster lab: Pacemaker decides, fencing through the lab's BMC (cluster.ts).
      ...(cluster ? {cluster: clusterConfig} : {}),
      backup: {dir: '.ha/backups', manifest: 'builtin:opscenter', keep: 24, max_age: '2h'},
      // The lab's tiny guest (guest-domain.ts), once defined: live-migrated with the service.
      ...(guests ? {guests: [labGuestConfig]} : {}),
    }
  }

  const header = [
    '# ha lab: generated by `ha lab up`; rewritten at every up. Run ha against the lab from the',
    `# admin side: ip netns exec ${labNetns.admin} ha <command> --config ${lab.config}`,
    '',
  ].join('\n')
  // ha refuses a config anyone but root could change (config/guarded-read.ts): modes set, not left to the umask.
  await writeFile(lab.config, header + stringify(config({identity_file: lab.adminKey, known_hosts: lab.knownHosts})))
  await chmod(lab.config, 0o644)
  const onNode = `# ha lab: this controller's ha config, generated by \`ha lab up\`.\n${stringify(config({identity_file: '/root/.ssh/id_ed25519', known_hosts: '/root/.ssh/known_hosts'}))}`
  for (const node of labNodes) {
    await mkdir(join(nodePaths(labDir, node).root, 'etc/ha'), {recursive: true})
    await chmod(join(nodePaths(labDir, node).root, 'etc/ha'), 0o755)
    await writeFile(join(nodePaths(labDir, node).root, 'etc/ha/ha.yaml'), onNode)
    await chmod(join(nodePaths(labDir, node).root, 'etc/ha/ha.yaml'), 0o644)
  }
}

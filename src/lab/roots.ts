import {randomUUID} from 'node:crypto'
import {chmod, chown, lchown, mkdir, symlink, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {addressOnly, labAddresses, labDataDir, labHostnames, labInterface, type LabNode, labProductVersion, labServiceIp, labVersionFile} from './layout.js'

/**
 * Each lab controller's own `root`: the files an Ops Center-like controller keeps outside its data
 * directory. The same account names get different numeric ids on the two nodes — that is the whole
 * reason restore re-owns by name (seed 001: "user ID values ... differ between the primary and
 * secondary"), and a lab with equal ids would let a restore that copies numbers pass by accident.
 */
export interface LabAccount {
  gid: number
  group: string
  name: string
  uid: number
}

export const labAccounts: Record<LabNode, LabAccount[]> = {
  primary: [
    {gid: 901, group: 'xvm', name: 'xvm', uid: 901},
    {gid: 902, group: 'dba', name: 'oracle', uid: 902},
    {gid: 903, group: 'pgsql', name: 'pgsql', uid: 903},
  ],
  secondary: [
    {gid: 1901, group: 'xvm', name: 'xvm', uid: 1901},
    {gid: 1802, group: 'dba', name: 'oracle', uid: 1750},
    {gid: 1603, group: 'pgsql', name: 'pgsql', uid: 1603},
  ],
}

export function accountOf(node: LabNode, name: string): LabAccount {
  const account = labAccounts[node].find((a) => a.name === name)
  if (!account) throw new Error(`lab: no account ${name} on ${node}`)
  return account
}

async function put(root: string, hostPath: string, text: string, mode = 0o644): Promise<void> {
  const path = join(root, hostPath)
  await mkdir(dirname(path), {recursive: true})
  await writeFile(path, text, {mode})
  await chmod(path, mode)
}

function passwd(node: LabNode): string {
  const base = [
    'root:x:0:0:root:/root:/bin/bash',
    'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
    'bin:x:2:2:bin:/bin:/usr/sbin/nologin',
    'sshd:x:100:65534::/run/sshd:/usr/sbin/nologin',
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  ]
  const homes: Record<string, string> = {oracle: '/opt/oracle', pgsql: '/var/opt/sun/xvm/pgsql', xvm: '/var/opt/sun/xvm'}
  const own = labAccounts[node].map((a) => `${a.name}:x:${a.uid}:${a.gid}:${a.name} service:${homes[a.name]}:/bin/sh`)
  return `${[...base, ...own].join('\n')}\n`
}

/** No passwords anywhere (ssh keys only), but no locked account either: sshd refuses locked ones. */
function shadow(node: LabNode): string {
  const names = ['root', 'daemon', 'bin', 'sshd', 'nobody', ...labAccounts[node].map((a) => a.name)]
  return `${names.map((name) => `${name}:*:19000:0:99999:7:::`).join('\n')}\n`
}

function group(node: LabNode): string {
  const base = ['root:x:0:', 'daemon:x:1:', 'bin:x:2:', 'tty:x:5:', 'shadow:x:42:', 'crontab:x:101:', 'nogroup:x:65534:']
  const own = labAccounts[node].map((a) => `${a.group}:x:${a.gid}:${a.name === a.group ? '' : a.name}`)
  return `${[...base, ...own].join('\n')}\n`
}

/** The seed's example file, with this lab's version (both nodes equal at `up`). */
export function versionProperties(version: string): string {
  return [
    '#Note: This file is created at build time.',
    '#Mon Jan 26 08:49:53 PST 2009',
    'version=GA',
    'product.version.xvmopscenter=2.1.0',
    'date=2009/01/26 08\\:49',
    'product.version.xvmserver=1.0.0',
    'build.variation=xvmopscenter',
    `product.version=${version}`,
    '#',
    '',
  ].join('\n')
}

/**
 * Persistent network config, read by the lab's boot: eth0's own lab address is the management
 * cabling and is set at every boot regardless; the stanzas here are this controller's identity.
 * The primary's carries the service IP, so a primary that reboots comes back holding it, and a
 * takeover that restores this file onto the secondary makes the service IP survive its reboot.
 */
function interfaces(node: LabNode): string {
  const head = [
    `# ha lab: ${labInterface} ${labAddresses[node]} is the lab's management address, set at every boot.`,
    '# The stanzas below are this controller\'s identity addresses; they move with it on failover.',
    '',
  ]
  if (node === 'secondary') return `${head.join('\n')}`
  return [...head, `auto ${labInterface}:0`, `iface ${labInterface}:0 inet static`, `    address ${labServiceIp}`, ''].join('\n')
}

function hosts(): string {
  return [
    '127.0.0.1\tlocalhost',
    `${addressOnly(labAddresses.primary)}\t${labHostnames.primary}`,
    `${addressOnly(labAddresses.secondary)}\t${labHostnames.secondary}`,
    `${addressOnly(labServiceIp)}\txvm-ec`,
    '',
  ].join('\n')
}

export interface NodeRootOptions {
  /** The admin's public key, authorized for root. */
  adminPublicKey: string
  /** The shared storage's block device: the primary mounts it at boot (its /etc/fstab). */
  storageDevice?: string
  storageFstype?: string
}

/** Writes a fresh root for `node` (the caller removed any previous one). */
export async function writeNodeRoot(root: string, node: LabNode, options: NodeRootOptions): Promise<void> {
  await put(root, '/etc/passwd', passwd(node))
  await put(root, '/etc/group', group(node))
  await put(root, '/etc/shadow', shadow(node), 0o640)
  await put(root, '/root/.ssh/authorized_keys', `${options.adminPublicKey.trim()}\n`, 0o600)
  await chmod(join(root, 'root'), 0o700)
  await chmod(join(root, 'root/.ssh'), 0o700)
  const fstab = ['# <file system> <mount point> <type> <options> <dump> <pass>', 'proc /proc proc defaults,noauto 0 0']
  // Seed 001: the primary has the shared storage; a takeover moves this line with the storage.
  if (node === 'primary' && options.storageDevice) fstab.push(`${options.storageDevice} ${labDataDir} ${options.storageFstype ?? 'ext4'} defaults 0 0`)
  await put(root, '/etc/fstab', `${fstab.join('\n')}\n`)
  await put(root, '/etc/hostname', `${labHostnames[node]}\n`)
  await put(root, '/etc/hosts', hosts())
  // Every host has one; nothing in the lab resolves names (no DNS reaches the namespaces).
  await put(root, '/etc/resolv.conf', 'nameserver 198.18.0.1\noptions timeout:1 attempts:1\n')
  await put(root, '/etc/network/interfaces', interfaces(node))
  // Machine identity files exist on each node so a test can prove they are never cloned.
  await put(root, '/etc/machine-id', `${randomUUID().replaceAll('-', '')}\n`, 0o444)
  await put(root, '/etc/hostid', `${randomUUID().slice(0, 8)}\n`)
  await put(root, labVersionFile, versionProperties(labProductVersion))
  await put(root, '/etc/crontab', 'SHELL=/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n')
  await put(root, '/etc/systemd/system/xvm-agent.service', '[Unit]\nDescription=xVM agent\n\n[Service]\nExecStart=/opt/sun/xvm/bin/agent\n\n[Install]\nWantedBy=multi-user.target\n')
  await put(root, '/etc/init.d/xvm', '#!/bin/sh\n# xvm controller start/stop\nexit 0\n', 0o755)
  await mkdir(join(root, labDataDir), {recursive: true})
  await mkdir(join(root, '/proc/sys/kernel/random'), {recursive: true})
  // Seed 001: the secondary has the software installed but not configured; only the primary has
  // the cron job that runs habackup and the controller's site config.
  if (node === 'primary') {
    await put(root, '/etc/cron.d/xvm-habackup', '# ha lab: what ha backup would install\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n5 * * * * root ha backup --quiet --if-attached\n')
    await put(root, '/var/spool/cron/crontabs/root', '# m h dom mon dow command\n30 2 * * * /opt/sun/xvm/bin/cleanup\n', 0o600)
    await put(root, '/etc/opt/sun/xvm.conf', 'controller.role=enterprise\ncontroller.name=xvm-ec\n')
  }
}

/**
 * The shared storage's first contents, owned by the primary's ids: what restore on the secondary
 * must re-own by name. A setuid file (chown clears setuid, so restore must chown before chmod) and
 * a symlink (must be re-owned itself, not followed) are the classic traps.
 */
export async function seedDataDir(dataDir: string): Promise<void> {
  const ids = (name: string) => accountOf('primary', name)
  const file = async (rel: string, text: string, owner: string, mode: number) => {
    const path = join(dataDir, rel)
    await mkdir(dirname(path), {recursive: true})
    await writeFile(path, text)
    await chown(path, ids(owner).uid, ids(owner).gid)
    await chmod(path, mode)
  }

  const dir = async (rel: string, owner: string, mode: number) => {
    const path = join(dataDir, rel)
    await mkdir(path, {recursive: true})
    await chown(path, ids(owner).uid, ids(owner).gid)
    await chmod(path, mode)
  }

  await chown(dataDir, ids('xvm').uid, ids('xvm').gid)
  await chmod(dataDir, 0o755)
  await dir('service', 'xvm', 0o755)
  await file('service/greeting.txt', 'hello from the shared storage\n', 'xvm', 0o644)
  await dir('db', 'oracle', 0o750)
  await file('db/datafile.dbf', 'ORACLE DATAFILE\n', 'oracle', 0o640)
  await dir('pgsql', 'pgsql', 0o700)
  await file('pgsql/PG_VERSION', '8.3\n', 'pgsql', 0o600)
  await dir('bin', 'xvm', 0o755)
  await file('bin/xvm-helper', '#!/bin/sh\nexit 0\n', 'xvm', 0o4755)
  await symlink('db', join(dataDir, 'current'))
  await lchown(join(dataDir, 'current'), ids('oracle').uid, ids('oracle').gid)
}

// Builds a directory that looks like an Ops Center-like controller's "/": the state outside the
// data directory that habackup saves, and a data directory. Used by the tests, `npm run demo`
// (before the lab exists) and bench/backup. Plain JS so every one of them can import it.
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

/**
 * @param {string} root
 * @param {{hostname?: string, version?: string, uidBase?: number, bulkFiles?: number, bulkBytes?: number, sshKeys?: boolean}} [options]
 *   bulkFiles/bulkBytes add that many files of that total size under /etc/opt/sun/bulk (benchmarks).
 */
export function makeControllerRoot(root, options = {}) {
  const {hostname = 'ctl-a', version = '2.1.0.1234', uidBase = 901, bulkFiles = 0, bulkBytes = 0, sshKeys = true} = options
  const put = (path, content, mode = 0o644) => {
    const full = join(root, path)
    mkdirSync(dirname(full), {recursive: true})
    writeFileSync(full, content, {mode})
    chmodSync(full, mode)
  }

  put('/etc/passwd', [
    'root:x:0:0:root:/root:/bin/bash',
    'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
    `xvm:x:${uidBase}:${uidBase}:Ops Center:/var/opt/sun/xvm:/bin/sh`,
    `oracle:x:${uidBase + 1}:${uidBase + 1}:DB:/var/opt/sun/xvm/db:/bin/sh`,
    `jet:x:${uidBase + 2}:${uidBase}:Provisioning:/var/opt/sun/xvm/jet:/bin/sh`,
    '',
  ].join('\n'))
  put('/etc/group', ['root:x:0:', 'daemon:x:1:', `xvm:x:${uidBase}:jet`, `dba:x:${uidBase + 1}:oracle`, ''].join('\n'))
  put('/etc/hostname', `${hostname}\n`)
  put('/etc/hosts', `127.0.0.1 localhost\n198.18.0.2 ${hostname}\n`)
  put('/etc/network/interfaces', 'auto eth0\niface eth0 inet static\n  address 198.18.0.2/24\n')
  put('/etc/resolv.conf', 'nameserver 127.0.0.53\n')
  put('/n1gc-setup/.version.properties', [
    '#Note: This file is created at build time.',
    '#Mon Jan 26 08:49:53 PST 2009',
    'version=GA',
    'product.version.xvmopscenter=2.1.0',
    'date=2009/01/26 08\\:49',
    'build.variation=xvmopscenter',
    `product.version=${version}`,
    '',
  ].join('\n'))
  put('/etc/crontab', 'SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n')
  put('/etc/cron.d/ha-backup', '0 * * * * root ha backup --quiet\n')
  put('/etc/systemd/system/xvm-agent.service', '[Unit]\nDescription=xvm agent\n[Service]\nExecStart=/opt/sun/xvm/bin/agent\n')
  put('/etc/opt/sun/xvm/satellite.conf', `controller=${hostname}\nport=8443\n`)
  put('/etc/opt/sun/xvm/secret.key', randomBytes(32).toString('hex'), 0o600)
  put('/etc/machine-id', '0123456789abcdef0123456789abcdef\n')
  put('/etc/hostid', 'abcd1234\n')
  mkdirSync(join(root, '/etc/ssh'), {recursive: true})
  if (sshKeys) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${hostname}`, '-f', join(root, '/etc/ssh/ssh_host_ed25519_key')])
  }

  try {
    symlinkSync('/usr/share/zoneinfo/UTC', join(root, '/etc/opt/sun/xvm/localtime'))
  } catch {}

  // The data directory (on shared storage in production): owned by the controller's users.
  const data = join(root, '/var/opt/sun/xvm')
  put('/var/opt/sun/xvm/db/data.db', randomBytes(4096))
  put('/var/opt/sun/xvm/service/greeting.txt', `hello from ${hostname}\n`)
  put('/var/opt/sun/xvm/bin/xvm-helper', '#!/bin/sh\n', 0o4755)
  if (process.getuid?.() === 0) {
    chownSync(data, uidBase, uidBase)
    chownSync(join(data, 'db'), uidBase + 1, uidBase + 1)
    chownSync(join(data, 'db/data.db'), uidBase + 1, uidBase + 1)
    chownSync(join(data, 'bin/xvm-helper'), 0, uidBase)
    chmodSync(join(data, 'bin/xvm-helper'), 0o4755)
    chownSync(join(root, '/etc/opt/sun/xvm/satellite.conf'), uidBase, uidBase)
  }

  if (bulkFiles > 0) {
    const size = Math.floor(bulkBytes / bulkFiles)
    // Every file different; half random (keys, images), half text-like (configuration, logs),
    // so gzip works about as hard as on a real controller's files.
    for (let i = 0; i < bulkFiles; i++) {
      const dir = join(root, '/etc/opt/sun/bulk', String(i % 50).padStart(2, '0'))
      if (i < 50) mkdirSync(dir, {recursive: true})
      let content
      if (i % 2 === 0) {
        content = randomBytes(size)
      } else {
        const lines = []
        let length = 0
        for (let n = 0; length < size; n++) {
          const line = `${i}.${n} controller.setting.${(n * 7919 + i) % 1000}=${randomBytes(6).toString('hex')} # ${n % 13 === 0 ? 'changed by admin' : 'default'}\n`
          lines.push(line)
          length += line.length
        }

        content = Buffer.from(lines.join('')).subarray(0, size)
      }

      writeFileSync(join(dir, `f${i}.dat`), content)
    }
  }

  return {dataDir: data, root}
}

/** A config for ha pointing at one or two controller roots. */
/** `storage` defaults to kind none: these roots are plain folders, not mounted shared storage. */
export function controllerConfig({primaryRoot, secondaryRoot = '/nonexistent-secondary', keep = 24, include = [], hostname = 'ctl-a', storage = {kind: 'none'}}) {
  return [
    'data_dir: /var/opt/sun/xvm',
    'nodes:',
    '  primary:',
    `    hostname: ${hostname}`,
    `    root: ${primaryRoot}`,
    '  secondary:',
    '    hostname: ctl-b',
    `    root: ${secondaryRoot}`,
    'storage:',
    ...Object.entries(storage).map(([key, value]) => `  ${key}: ${value}`),
    'backup:',
    `  keep: ${keep}`,
    ...(include.length > 0 ? ['  include:', ...include.map((i) => `    - ${i}`)] : []),
    '',
  ].join('\n')
}

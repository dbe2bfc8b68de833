import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {after, before, describe, it} from 'node:test'

import {loadConfig} from '../../src/config/load.js'
import {labNetns, labPaths} from '../../src/lab/lab.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor, labDone, labReady} from './shared-lab.js'

// The main job end to end on the lab's controllers, each with root: / and its own ids: backup on
// the primary, the primary dies, the secondary takes the storage and restores by name.
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('restore')
const lab = labPaths(labDir)

function ssh(node: 'primary' | 'secondary', command: string) {
  const host = node === 'primary' ? '198.18.0.2' : '198.18.0.3'
  const r = spawnSync(
    'ip',
    ['netns', 'exec', labNetns.admin, 'ssh', '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', `root@${host}`, command],
    {encoding: 'utf8', timeout: 120_000},
  )
  return {status: r.status, stderr: r.stderr ?? '', stdout: r.stdout ?? ''}
}

describe('ha restore on the lab\'s secondary after the primary died', {skip}, () => {
  before(async () => {
    await labReady(labDir)
  })
  after(() => labDone(labDir))

  it('restores the primary\'s saved state onto the secondary and re-owns the data by name, with root: / on both', async () => {
    const backup = ssh('primary', 'ha backup --quiet --if-attached')
    assert.equal(backup.status, 0, backup.stderr)
    assert.notEqual(ssh('secondary', 'test -e /etc/opt/sun/xvm.conf').status, 0, 'the secondary starts without the primary\'s site config')

    // The primary dies; its mount goes with it. The secondary mounts the shared storage itself.
    const halt = ha(['lab', 'halt', 'primary', '--lab-dir', labDir])
    assert.equal(halt.status, 0, halt.stderr)
    const device = (await loadConfig(lab.config)).config.storage.device!
    assert.equal(ssh('secondary', `mount -t ext4 ${device} /var/opt/sun/xvm`).status, 0)

    const restore = ssh('secondary', 'ha restore --yes --json')
    assert.equal(restore.status, 0, `${restore.stdout}\n${restore.stderr}`)

    // Re-owned by name: the secondary's xvm is 1901 and its oracle 1750 (the primary's were 901, 902).
    const owners = ssh('secondary', 'cd /var/opt/sun/xvm && stat -c "%n %U %u %a" service/greeting.txt db/datafile.dbf bin/xvm-helper')
    assert.equal(owners.status, 0, owners.stderr)
    assert.deepEqual(owners.stdout.trim().split('\n'), ['service/greeting.txt xvm 1901 644', 'db/datafile.dbf oracle 1750 640', 'bin/xvm-helper xvm 1901 4755'])
    // The primary's state outside the data directory is now in the secondary's own /etc.
    assert.match(ssh('secondary', 'cat /etc/opt/sun/xvm.conf').stdout, /controller\.name=xvm-ec/)
    // Without --takeover the secondary keeps its identity.
    assert.equal(ssh('secondary', 'hostname; cat /etc/hostname').stdout.trim(), 'ctl-b\nctl-b')
  })
})

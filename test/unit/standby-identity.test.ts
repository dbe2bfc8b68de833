import assert from 'node:assert/strict'
import {chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, it} from 'node:test'

import {parse} from 'yaml'

import {specCoverage} from '../../src/backup/collect.js'
import {ifupdown} from '../../src/drivers/boot-config/ifupdown.js'
import {forgetKeptIdentity, giveBackIdentity, keepStandbyIdentity, KeptIdentityError, notAsKept, readKeptIdentity} from '../../src/restore/standby-identity.js'
import {missingPrerequisite} from '../helpers/prereq.js'

// Real files, owners and modes under a temporary root (root needed to chown).
const skip = missingPrerequisite(['root'])
const coverage = specCoverage(parse(readFileSync(new URL('../../templates/manifest.opscenter.yaml', import.meta.url), 'utf8')).entries, [])
const keptDir = (root: string) => join(root, 'var/lib/ha/standby-identity')

function put(root: string, path: string, text: string, mode = 0o644, uid = 0): void {
  mkdirSync(join(root, path, '..'), {recursive: true})
  writeFileSync(join(root, path), text)
  chmodSync(join(root, path), mode)
  chownSync(join(root, path), uid, 0)
}

const targets = [
  {action: 'replace' as const, path: '/etc/hostname', role: 'identity', type: 'file'},
  {action: 'replace' as const, path: '/etc/ssh/ssh_host_ed25519_key', role: 'identity', type: 'file'},
  {action: 'replace' as const, path: '/etc/ssh/ssh_host_ed25519_key.pub', role: 'identity', type: 'file'},
  {action: 'replace' as const, path: '/etc/network/interfaces', role: 'identity', type: 'file'},
  {action: 'create' as const, path: '/etc/ssh/ssh_host_rsa_key', role: 'identity', type: 'file'},
  {action: 'unchanged' as const, path: '/etc/hosts', role: 'identity', type: 'file'},
  {action: 'replace' as const, path: '/etc/crontab', role: 'state', type: 'file'},
]

describe('the standby identity kept at takeover and given back at rejoin', {skip}, () => {
  let root: string
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'ha-standby-identity-'))
    put(root, '/etc/hostname', 'ctl-b\n')
    put(root, '/etc/hosts', '127.0.0.1 localhost\n')
    put(root, '/etc/ssh/ssh_host_ed25519_key', 'PRIVATE B\n', 0o600)
    put(root, '/etc/ssh/ssh_host_ed25519_key.pub', 'ssh-ed25519 QUFBQg== root@ctl-b\n')
    put(root, '/etc/network/interfaces', 'auto eth0:0\niface eth0:0 inet static\n    address 198.18.0.100\n')
    put(root, '/etc/crontab', 'x\n')
  })
  afterEach(() => rmSync(root, {force: true, recursive: true}))

  const keep = (runId = 'r1') => keepStandbyIdentity(root, {hostname: 'ctl-b', node: 'secondary', runId}, targets, coverage)

  function takeOver(): void {
    put(root, '/etc/hostname', 'ctl-a\n')
    put(root, '/etc/ssh/ssh_host_ed25519_key', 'PRIVATE A\n', 0o600)
    put(root, '/etc/ssh/ssh_host_ed25519_key.pub', 'ssh-ed25519 QUFBQQ== root@ctl-a\n')
    put(root, '/etc/ssh/ssh_host_rsa_key', 'PRIVATE A RSA\n', 0o600)
  }

  it('keeps exactly the identity files the takeover writes over or creates, root-only; a second takeover keeps nothing new', async () => {
    const first = await keep()
    assert.deepEqual(first, {dir: keptDir(root), files: 5, kept: true})
    assert.equal(statSync(keptDir(root)).mode & 0o777, 0o700)
    assert.equal(statSync(join(keptDir(root), 'record.json')).mode & 0o777, 0o600)
    const kept = readKeptIdentity(root, coverage)!
    assert.deepEqual(kept.record.files.map((f) => f.path), ['/etc/hostname', '/etc/ssh/ssh_host_ed25519_key', '/etc/ssh/ssh_host_ed25519_key.pub', '/etc/network/interfaces', '/etc/ssh/ssh_host_rsa_key'])
    takeOver()
    const second = await keep('r2')
    assert.equal(second.kept, false)
    assert.equal(readKeptIdentity(root, coverage)!.record.run_id, 'r1')
    assert.equal(readKeptIdentity(root, coverage)!.bytes.get('/etc/hostname')!.toString(), 'ctl-b\n')
  })

  it('gives back bytes, mode and owner, removes what the takeover created, leaves the service IP out; forgotten afterwards', async () => {
    await keep()
    takeOver()
    chmodSync(join(root, 'etc/ssh/ssh_host_ed25519_key'), 0o640)
    const given = await giveBackIdentity(root, readKeptIdentity(root, coverage)!, ['198.18.0.100/24'], ifupdown)
    assert.equal(readFileSync(join(root, 'etc/hostname'), 'utf8'), 'ctl-b\n')
    assert.equal(readFileSync(join(root, 'etc/ssh/ssh_host_ed25519_key'), 'utf8'), 'PRIVATE B\n')
    assert.equal(statSync(join(root, 'etc/ssh/ssh_host_ed25519_key')).mode & 0o7777, 0o600)
    assert.equal(lstatSync(join(root, 'etc/ssh/ssh_host_rsa_key'), {throwIfNoEntry: false}), undefined)
    assert.doesNotMatch(readFileSync(join(root, 'etc/network/interfaces'), 'utf8'), /198\.18\.0\.100/)
    assert.deepEqual(given.service_ips_removed, ['198.18.0.100/24'])
    assert.deepEqual(given.host_keys, ['ssh-ed25519 QUFBQg=='])
    assert.equal(given.hostname, 'ctl-b')
    // Again: nothing left to change.
    assert.deepEqual((await giveBackIdentity(root, readKeptIdentity(root, coverage)!, ['198.18.0.100/24'], ifupdown)).changed, [])
    assert.deepEqual(notAsKept(root, readKeptIdentity(root, coverage)!, ifupdown), [])
    put(root, '/etc/hostname', 'ctl-a\n')
    assert.deepEqual(notAsKept(root, readKeptIdentity(root, coverage)!, ifupdown), ['/etc/hostname'])
    put(root, '/etc/hostname', 'ctl-b\n')
    await forgetKeptIdentity(readKeptIdentity(root, coverage)!)
    assert.equal(readKeptIdentity(root, coverage), undefined)
  })

  const tamper: Array<[string, (dir: string) => void, RegExp]> = [
    ['record owned by another user', (d) => chownSync(join(d, 'record.json'), 1000, 0), /record\.json is owned by uid 1000, not by root/],
    ['a copy replaced by a symlink', (d) => {
      rmSync(join(d, 'f0'))
      symlinkSync('/etc/shadow', join(d, 'f0'))
    }, /f0 \(of \/etc\/hostname\) is a symlink/],
    ['the folder replaced by a symlink', (d) => {
      rmSync(`${d}.real`, {force: true, recursive: true})
      renameSync(d, `${d}.real`)
      symlinkSync(`${d}.real`, d)
    }, /standby-identity is a symlink/],
    ['a path outside the spec', (d) => {
      const p = join(d, 'record.json')
      writeFileSync(p, readFileSync(p, 'utf8').replace('"/etc/hostname"', '"/root/.ssh/authorized_keys"'))
    }, /lists "\/root\/\.ssh\/authorized_keys": not an identity file of this node's backup manifest \(not covered at all\)/],
    ['a state file of the spec', (d) => {
      const p = join(d, 'record.json')
      writeFileSync(p, readFileSync(p, 'utf8').replace('"/etc/hostname"', '"/etc/crontab"'))
    }, /lists "\/etc\/crontab": not an identity file .*role state/],
    ['a machine identity file', (d) => {
      const p = join(d, 'record.json')
      writeFileSync(p, readFileSync(p, 'utf8').replace('"/etc/hostname"', '"/etc/machine-id"'))
    }, /lists "\/etc\/machine-id": a machine identity file/],
    ['a copy changed', (d) => writeFileSync(join(d, 'f0'), 'ctl-x\n'), /does not match the checksum/],
    ['the folder open to others', (d) => chmodSync(d, 0o755), /is open to others/],
    ['a record that is not JSON', (d) => writeFileSync(join(d, 'record.json'), '{'), /is not a record ha writes/],
  ]
  for (const [name, breakIt, message] of tamper) {
    it(`refuses a kept identity with ${name}, by name, before anything is given back`, async () => {
      await keep()
      takeOver()
      breakIt(keptDir(root))
      assert.throws(() => readKeptIdentity(root, coverage), (error: Error) => {
        assert.ok(error instanceof KeptIdentityError)
        assert.match(error.message, message)
        assert.match(error.message, /refused, nothing was changed/)
        return true
      })
      assert.equal(readFileSync(join(root, 'etc/hostname'), 'utf8'), 'ctl-a\n')
      // Nor is a second takeover allowed to keep over it.
      await assert.rejects(keep('r2'), KeptIdentityError)
    })
  }

  it('refuses to keep into a /var/lib/ha that is a symlink, changing nothing', async () => {
    mkdirSync(join(root, 'var/lib'), {recursive: true})
    mkdirSync(join(root, 'elsewhere'))
    symlinkSync(join(root, 'elsewhere'), join(root, 'var/lib/ha'))
    await assert.rejects(keep(), /var\/lib\/ha is a symlink/)
    assert.equal(lstatSync(join(root, 'elsewhere/standby-identity'), {throwIfNoEntry: false}), undefined)
  })
})

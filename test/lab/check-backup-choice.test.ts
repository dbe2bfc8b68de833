import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {after, before, describe, it} from 'node:test'

import {labDataDir, labNetns, labPaths} from '../../src/lab/lab.js'
import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor, labDone, labReady} from './shared-lab.js'

/**
 * Issue 9: `ha check` said "safe" while the archive restore would use was damaged, because it
 * believed the verification record written when the archive was made. In the lab, from the admin
 * namespace over ssh as in production: the archive on the primary's shared storage is damaged
 * behind ha's back (its record still says ok), and check must judge the bytes, as restore does.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('backup-choice')
const lab = labPaths(labDir)
const fromAdmin = {prefix: ['ip', 'netns', 'exec', labNetns.admin], timeoutMs: 60_000}
// The primary's archives as it sees them (root: /, the shared storage mounted in its own namespace).
const backups = `${labDataDir}/.ha/backups`

/** Runs argv on the primary over ssh from the admin namespace (its own mounts, its /etc/ha/ha.yaml). */
function onPrimary(argv: string[]): {status: null | number; stderr: string; stdout: string} {
  const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
  return spawnSync(
    'ip',
    ['netns', 'exec', labNetns.admin, 'ssh', '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', 'root@198.18.0.2', quoted],
    {encoding: 'utf8', timeout: 60_000},
  )
}

function backupAge() {
  const r = ha(['check', '--json', '--config', lab.config], fromAdmin)
  assert.ok(r.json, `ha check printed no JSON: ${r.stdout}${r.stderr}`)
  const row = r.json.result.checks.find((c: {id: string}) => c.id === 'backup_age') as {evidence: Record<string, any>; status: string; summary: string}
  return {row, status: r.status}
}

describe('ha check judges the archive restore would use, in the lab', {skip}, () => {
  before(async () => {
    await labReady(labDir)
  })
  after(() => labDone(labDir))

  const backup = () => {
    const r = onPrimary(['ha', 'backup', '--json'])
    assert.equal(r.status, 0, r.stderr)
    return JSON.parse(r.stdout).result.id as string
  }

  it('one byte flipped inside the only archive, its record still "ok": check fails backup_age naming the damage, and verify on the node agrees', () => {
    const id = backup()
    assert.equal(backupAge().row.status, 'pass')
    // Recompress with one saved byte changed, as a disk or a hand would; the .verify.json stays.
    const flip = [
      'const z = require("node:zlib"), fs = require("node:fs");',
      `const f = ${JSON.stringify(`${backups}/${id}.tar.gz`)};`,
      'const t = z.gunzipSync(fs.readFileSync(f)); const at = t.indexOf("127.0.0.1"); t[at] = 0x32;',
      'fs.writeFileSync(f, z.gzipSync(t));',
    ].join(' ')
    const r = onPrimary(['node', '-e', flip])
    assert.equal(r.status, 0, r.stderr)

    const {row, status} = backupAge()
    assert.equal(status, 3)
    assert.equal(row.status, 'fail')
    assert.match(row.summary, /no backup on primary that restore would accept/)
    assert.match(row.summary, new RegExp(`${id} \\(files/etc/hosts: checksum mismatch`))
    const verify = onPrimary(['ha', 'backup', 'verify', '--json'])
    assert.equal(verify.status, 1)
    assert.match(JSON.parse(verify.stdout).result.archives[0].problems.join('\n'), /files\/etc\/hosts: checksum mismatch/)
  })

  it('a newer archive cut short since: check names it as passed over and measures the older one restore would use', () => {
    const older = backup()
    const newer = backup()
    const r = onPrimary(['truncate', '-s', '-64', `${backups}/${newer}.tar.gz`])
    assert.equal(r.status, 0, r.stderr)
    const {row} = backupAge()
    assert.equal(row.status, 'warn', row.summary)
    assert.equal(row.evidence.newest.id, older)
    assert.match(row.summary, new RegExp(`restore would pass over .*${newer} \\(the archive is truncated`))
  })
})

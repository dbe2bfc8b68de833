import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {parse} from 'yaml'

import {labNetns, labPaths} from '../../src/lab/lab.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor, labDone, labReady} from './shared-lab.js'

/**
 * Issue 10: "in the lab, a short schedule really fires and an archive appears". On the primary,
 * logged in over ssh: `ha schedule install` at the coming minute writes /etc/cron.d/ha-backup,
 * the primary's own cron daemon (started by its init, as on a real controller) runs the line at
 * that minute, and a verified archive appears on the shared storage; `ha schedule remove` takes
 * the file away. The standby gets the same line, as docs/schedule.md says to install it on both nodes:
 * its run at the same minute (--if-attached, storage not attached there) must not disturb the
 * primary's, and exactly one archive appears.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('schedule')
const lab = labPaths(labDir)
const address = {primary: '198.18.0.2', secondary: '198.18.0.3'} as const

function ssh(node: keyof typeof address, command: string) {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', labNetns.admin, 'ssh', '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', `root@${address[node]}`, command],
    {encoding: 'utf8', timeout: 60_000},
  )
  return {status: r.status, stderr: r.stderr ?? '', stdout: r.stdout ?? ''}
}

function archives(): Array<{created_at: string; id: string; verified: boolean}> {
  const r = ssh('primary', 'ha backup list --json')
  assert.equal(r.status, 0, r.stdout + r.stderr)
  return JSON.parse(r.stdout).result.backups
}

describe('ha schedule in the lab', {skip}, () => {
  before(async () => {
    await labReady(labDir)
    // The archives counted are those on this lab's shared storage: the primary must have this
    // lab's device mounted (not one a previous lab left attached) before anything is measured.
    const device = parse(readFileSync(lab.config, 'utf8')).storage.device as string
    const deadline = Date.now() + 30_000
    let source = ''
    while (Date.now() < deadline) {
      source = ssh('primary', 'findmnt -n -o SOURCE /var/opt/sun/xvm').stdout.trim()
      if (source === device) break
      await sleep(500)
    }

    assert.equal(source, device, `the primary has this lab's storage ${device} mounted`)
  })
  after(() => labDone(labDir))

  it('installed for the coming minute on both nodes, cron on the primary runs a real backup within 2.5 minutes; then removed from both', {timeout: 400_000}, async () => {
    const before = new Set(archives().map((a) => a.id))
    assert.equal(ssh('primary', 'pgrep -x cron >/dev/null').status, 0, 'the primary runs its cron daemon')
    // The node's clock is this machine's; the next whole minute, or the one after when this one
    // is nearly over (installing over ssh takes a moment).
    const now = new Date()
    const minute = (now.getMinutes() + (now.getSeconds() < 45 ? 1 : 2)) % 60
    for (const node of ['primary', 'secondary'] as const) {
      const r = ssh(node, `ha schedule install --minute ${minute} --json`)
      assert.equal(r.status, 0, `${node}: ${r.stdout}${r.stderr}`)
      const result = JSON.parse(r.stdout).result
      assert.equal(result.files[0].path, '/etc/cron.d/ha-backup')
      assert.equal(new Date(result.next_runs[0]).getMinutes(), minute)
    }

    const show = ssh('primary', 'ha schedule show --json')
    const expression: string = JSON.parse(show.stdout).result.expression
    assert.equal(Number(expression.split(' ')[0]), minute, expression)
    assert.equal(expression.split(' ').slice(1).join(' '), '* * * *')
    assert.deepEqual(JSON.parse(show.stdout).result.problems, [])

    // Only an archive made since the install counts (not one that was there before).
    const deadline = Date.now() + 150_000
    const fresh = () => archives().filter((a) => !before.has(a.id))
    let found = fresh()
    while (found.length === 0 && Date.now() < deadline) {
      await sleep(3000)
      found = fresh()
    }

    const waited = Math.round((Date.now() - now.getTime()) / 1000)
    assert.equal(found.length, 1, `one new archive within 150 s of the install (cron log: ${ssh('primary', 'cat /var/log/syslog /var/log/cron.log 2>/dev/null | tail -20').stdout})`)
    assert.equal(found[0].verified, true)
    assert.equal(new Date(found[0].created_at).getMinutes(), minute, `it ran at the scheduled minute: installed at ${now.toISOString()} for minute ${minute}, the archive is ${found[0].id} (${found[0].created_at}); before: ${[...before].join(', ') || 'none'}`)
    console.log(`# the scheduled backup appeared ${waited} s after ha schedule install`)

    for (const node of ['primary', 'secondary'] as const) {
      const r = ssh(node, 'ha schedule remove --json')
      assert.equal(r.status, 0, r.stdout + r.stderr)
      assert.deepEqual(JSON.parse(r.stdout).result.files, [{action: 'removed', path: '/etc/cron.d/ha-backup'}])
      assert.notEqual(ssh(node, 'test -e /etc/cron.d/ha-backup').status, 0)
      assert.equal(JSON.parse(ssh(node, 'ha schedule show --json').stdout).result.installed, false)
    }
  })
})

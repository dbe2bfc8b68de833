import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {nodePaths} from '../../src/lab/lab.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor} from './shared-lab.js'
import {failoverLab, stepStarted} from './failover-helpers.js'

// ha rejoin gives the standby back the identity it had before its takeover. One lab for the
// file; the tests run in order (the pair is left working: primary active, secondary its own self).
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('rejoin')
const journalDir = `${labDir}-journal`
const {assertServes, down, haAdmin, lab, ssh, startHa, up} = failoverLab(labDir, journalDir)
const kept = '/var/lib/ha/standby-identity'

function facts(node: 'primary' | 'secondary') {
  const r = ssh(node, 'hostname; cat /etc/hostname; cat /etc/ssh/ssh_host_*_key.pub | cut -d" " -f1,2 | sort')
  assert.equal(r.status, 0, r.stderr)
  const [running, file, ...keys] = r.stdout.trim().split('\n')
  return {file, keys: keys.join('\n'), running}
}

function keptListing(): string {
  return ssh('secondary', `cd ${kept} && ls -la --time-style=+ . && sha256sum *`).stdout
}

function failover(to: 'primary' | 'secondary') {
  const r = haAdmin(['failover', '--yes', '--json'])
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
  assert.equal(r.envelope!.result.to, to)
  assertServes(to)
}

describe('ha rejoin gives the standby its own identity back', {skip}, () => {
  let before0: ReturnType<typeof facts>
  let primary0: ReturnType<typeof facts>
  before(async () => {
    await up()
    before0 = facts('secondary')
    primary0 = facts('primary')
  })
  after(down)

  it('the takeover keeps the secondary\'s own identity on its own disk, root-only; after the failback it still carries ctl-a', () => {
    assert.equal(before0.running, 'ctl-b')
    assert.notEqual(before0.keys, primary0.keys)
    failover('secondary')
    const record = ssh('secondary', `stat -c '%U %a' ${kept} ${kept}/record.json && cat ${kept}/record.json`)
    assert.equal(record.status, 0, record.stderr)
    const [dirLine, fileLine, ...json] = record.stdout.split('\n')
    assert.equal(dirLine, 'root 700')
    assert.equal(fileLine, 'root 600')
    const paths = JSON.parse(json.join('\n')).files.map((f: {path: string}) => f.path)
    // Exactly what the takeover writes over: the lab's /etc/hosts is the same on both nodes, so it is not kept.
    for (const p of ['/etc/hostname', '/etc/network/interfaces']) assert.ok(paths.includes(p), `${p} kept`)
    assert.ok(!paths.includes('/etc/hosts'))
    assert.ok(paths.some((p: string) => /^\/etc\/ssh\/ssh_host_.*_key$/.test(p)), 'the private host keys kept')
    assert.ok(!paths.includes('/etc/machine-id') && !paths.includes('/etc/passwd'))
    failover('primary')
    // The problem rejoin solves: two machines with one name and one host key.
    assert.equal(facts('secondary').running, 'ctl-a')
    assert.equal(facts('secondary').keys, primary0.keys)
  })

  it('refuses a tampered kept record by name (wrong owner, a symlink, a path outside the spec) and changes nothing', () => {
    const listing = keptListing()
    const cases: Array<{break: string; fix: string; message: RegExp}> = [
      {break: `chown 1000 ${kept}/record.json`, fix: `chown 0 ${kept}/record.json`, message: /record\.json is owned by uid 1000, not by root/},
      {break: `mv ${kept}/f0 /root/f0.real && ln -s /etc/shadow ${kept}/f0`, fix: `rm ${kept}/f0 && mv /root/f0.real ${kept}/f0`, message: /f0 \(of \/etc\/\S+\) is a symlink/},
      {
        break: `cp -a ${kept}/record.json /root/record.real && sed -i 's#"/etc/hostname"#"/root/.ssh/authorized_keys"#' ${kept}/record.json`,
        fix: `mv /root/record.real ${kept}/record.json`,
        message: /lists "\/root\/\.ssh\/authorized_keys": not an identity file of this node's backup manifest/,
      },
    ]
    for (const c of cases) {
      assert.equal(ssh('secondary', c.break).status, 0)
      const r = haAdmin(['rejoin', 'secondary', '--json'])
      assert.equal(r.status, 1, `${c.break}: ${r.stdout}\n${r.stderr}`)
      assert.match(r.envelope!.error!.message, c.message)
      assert.match(r.envelope!.error!.message, /refused, nothing was changed/)
      assert.equal(r.events.find((e) => e.step === 'give-back-identity' && e.event !== 'started')?.event, 'failed')
      const now = facts('secondary')
      assert.equal(now.running, 'ctl-a', 'nothing changed: the hostname')
      assert.equal(now.file, 'ctl-a', 'nothing changed: /etc/hostname')
      assert.equal(now.keys, primary0.keys, 'nothing changed: the host keys')
      assert.equal(ssh('secondary', c.fix).status, 0)
      assert.equal(keptListing(), listing, 'the kept identity is as it was')
    }
  })

  it('ha rejoin secondary: ctl-b again with its own host keys, known_hosts accepts them, ha check passes, and it can take over again; Ctrl-C in its reboot wait stops it cleanly', async () => {
    // known_hosts loses the secondary's own keys (as if they had never been recorded): rejoin records them again.
    const own = before0.keys.split('\n').map((k) => k.split(' ')[1])
    const knownBefore = readFileSync(lab.knownHosts, 'utf8')
    writeFileSync(lab.knownHosts, knownBefore.split('\n').filter((l) => !own.some((b) => l.includes(b))).join('\n'))
    const plan = haAdmin(['rejoin', 'secondary', '--plan', '--json'])
    assert.equal(plan.status, 0, plan.stderr)
    const r = haAdmin(['rejoin', 'secondary', '--json'])
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
    // The plan is what ran, in its order.
    assert.deepEqual(r.events.filter((e) => e.event !== 'started').map((e) => e.step), plan.envelope!.result.plan.map((s: {id: string}) => s.id))
    for (const a of r.envelope!.result.ran as Array<{action: string; step: string}>) {
      assert.ok(plan.envelope!.result.plan.find((s: {id: string}) => s.id === a.step).actions.includes(a.action), `ran but not planned: ${a.action}`)
    }

    const known = readFileSync(lab.knownHosts, 'utf8')
    for (const b of own) assert.match(known, new RegExp(`^198\\.18\\.0\\.3 \\S+ ${b.replaceAll('+', '\\+')}$`, 'm'), 'the secondary\'s own key recorded for its address')
    const journal = readFileSync(r.envelope!.result.journal, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    const added = journal.find((j) => j.type === 'data' && j.step === 'give-back-identity' && j.data.known_hosts_added)
    assert.equal(added.data.known_hosts_added.length, own.length, 'what changed in known_hosts is said')
    const done = r.events.filter((e) => e.event !== 'started').map((e) => `${e.step}:${e.event}`)
    assert.ok(done.includes('give-back-identity:done'), done.join(' '))
    assert.ok(r.envelope!.result.ran.some((a: {action: string; step: string}) => a.step === 'give-back-identity' && /--kept-identity give-back/.test(a.action)))
    const now = facts('secondary')
    assert.equal(now.running, 'ctl-b')
    assert.equal(now.file, 'ctl-b')
    assert.equal(now.keys, before0.keys, 'the host keys it had before the first failover')
    assert.doesNotMatch(ssh('secondary', 'cat /etc/network/interfaces').stdout, /198\.18\.0\.100/)
    assert.notEqual(ssh('secondary', `test -e ${kept}`).status, 0, 'the kept copy is removed once proven')
    // ssh from the admin side (StrictHostKeyChecking=yes against the lab's known_hosts) accepted the key above.
    const check = haAdmin(['check', '--json'])
    assert.equal(check.status, 0, `${check.stdout}\n${check.stderr}`)
    // A second rejoin has nothing to give back.
    const again = haAdmin(['rejoin', 'secondary', '--json'])
    assert.equal(again.status, 0, `${again.stdout}\n${again.stderr}`)
    assert.equal(again.events.find((e) => e.step === 'give-back-identity' && e.event !== 'started')?.event, 'skipped')

    failover('secondary')
    assert.equal(facts('secondary').running, 'ctl-a')
    failover('primary')
    // Ctrl-C while ha waits for the rejoining node to reboot (it stays down 8 s): the wait ends,
    // the step stops (not failed, never "did not come back"), exit 5; ha rejoin again finishes.
    writeFileSync(nodePaths(labDir, 'secondary').rebootDelay, '8\n')
    const rejoin = startHa(['rejoin', 'secondary', '--json'])
    assert.ok(await rejoin.when(stepStarted('give-back-identity')), rejoin.stdout() + rejoin.stderr())
    // The lab's power supervisor takes the delay file when the node goes down: ha waits from then.
    for (let i = 0; i < 600 && existsSync(nodePaths(labDir, 'secondary').rebootDelay); i++) await sleep(100)
    assert.ok(!existsSync(nodePaths(labDir, 'secondary').rebootDelay), 'the secondary went down for its reboot')
    await sleep(500)
    rejoin.child.kill('SIGINT')
    const cut = await rejoin.done
    assert.equal(cut.status, 5, `${cut.stdout}\n${cut.stderr}`)
    assert.doesNotMatch(cut.stdout, /did not come back/)
    assert.equal(cut.envelope!.error!.message, 'interrupted during give-back-identity (secondary was asked to reboot; the wait for it ended, once it is up again: ha rejoin secondary)')
    assert.deepEqual(cut.envelope!.error!.actions, ['ha rejoin secondary'])
    assert.deepEqual([cut.events.at(-1)!.step, cut.events.at(-1)!.event], ['give-back-identity', 'stopped'])
    for (let i = 0; i < 60 && ssh('secondary', 'true').status !== 0; i++) await sleep(1000)
    const back = haAdmin(['rejoin', 'secondary', '--json'])
    assert.equal(back.status, 0, `${back.stdout}\n${back.stderr}`)
    assert.equal(facts('secondary').keys, before0.keys)
    assert.equal(haAdmin(['check', '--json']).status, 0)
  })
})

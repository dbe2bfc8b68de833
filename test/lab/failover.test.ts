import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'

import {parse, stringify} from 'yaml'

import {labNetns, nodePaths} from '../../src/lab/lab.js'
import {haBin} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {terminal} from '../helpers/tmux.js'
import {labDirFor} from './shared-lab.js'
import {failoverLab} from './failover-helpers.js'

// ha failover end to end between the lab's two controllers (root: / on both), driven from the
// admin namespace as an admin would: one lab for the whole file, each test leaving a working pair.
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'tmux'])
const labDir = labDirFor('failover')
const journalDir = `${labDir}-journal`
const {assertRanAsPlanned, assertServes, dataDirFacts, down, haAdmin, lab, ssh, up} = failoverLab(labDir, journalDir)

describe('ha failover between the lab\'s controllers', {skip}, () => {
  before(up)
  after(down)

  it('refuses without a terminal and without --yes: exit 4 naming --yes, nothing changed', () => {
    const r = haAdmin(['failover', '--json'])
    assert.equal(r.status, 4, r.stdout + r.stderr)
    assert.match(r.envelope!.error!.actions.join(' '), /--yes/)
    assertServes('primary')
  })

  it('fails over to the secondary and back, each one command (--yes --json); the plan is what ran; the data is intact', () => {
    const dataBefore = dataDirFacts('primary')
    for (const [from, to] of [['primary', 'secondary'], ['secondary', 'primary']] as const) {
      const plan = haAdmin(['failover', '--plan', '--json'])
      assert.equal(plan.status, 0, plan.stderr)
      assert.equal(plan.envelope!.result.from, from)
      const run = haAdmin(['failover', '--yes', '--json'])
      assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`)
      assert.equal(run.envelope!.result.to, to)
      assertRanAsPlanned(plan.envelope!.result.plan, run)
      for (const e of run.events.filter((e) => e.event !== 'started')) assert.equal(typeof e.duration_ms, 'number')
      assertServes(to)
      assert.equal(dataDirFacts(to), dataBefore, 'content and owners by name are as before')
      // The journal is on the storage too, ending as it ends where ha ran.
      const onStorage = ssh(to, `cat /var/opt/sun/xvm/.ha/failover/${run.envelope!.result.run_id}.jsonl`)
      assert.equal(onStorage.status, 0, onStorage.stderr)
      assert.deepEqual(JSON.parse(onStorage.stdout.trim().split('\n').at(-1)!).status, 'done')
      const status = haAdmin(['status', '--json'])
      assert.equal(status.status, 0, status.stdout)
      assert.equal(status.envelope!.result.active, to)
      assert.equal(status.envelope!.result.epoch, from === 'primary' ? 1 : 2)
      assert.equal(status.envelope!.result.failover_in_progress, null)
    }
  })

  it('finishes with --resume after the driving process is SIGKILLed in the middle of each step in turn', () => {
    const dataBefore = dataDirFacts('primary')
    const steps = ['preflight', 'final-backup', 'stop-services', 'release-ips', 'release-storage', 'acquire-storage', 'restore-takeover', 'reboot', 'verify']
    for (const [i, step] of steps.entries()) {
      const r = haAdmin(i === 0 ? ['failover', '--yes', '--json'] : ['failover', '--resume', '--json'], {HA_FAILOVER_TEST_KILL_IN: step})
      assert.equal(r.signal, 'SIGKILL', `killed in ${step}: ${r.stdout}\n${r.stderr}`)
      assert.equal(r.events.at(-1)?.step, step)
      const status = haAdmin(['status', '--json'])
      assert.equal(status.status, 5, `ha status says a failover is in progress after a kill in ${step}`)
      assert.equal(status.envelope!.result.failover_in_progress.to, 'secondary')
    }

    const last = haAdmin(['failover', '--resume', '--json'])
    assert.equal(last.status, 0, `${last.stdout}\n${last.stderr}`)
    assertServes('secondary')
    assert.equal(dataDirFacts('secondary'), dataBefore)
  })

  it('stops with exit 5 when the rebooted node is not back within reboot_timeout, and --resume finishes once it is', () => {
    const config = parse(readFileSync(lab.config, 'utf8'))
    config.failover.reboot_timeout = '3s'
    const short = `${labDir}/ha-short-reboot.yaml`
    writeFileSync(short, stringify(config))
    // The node taking over stays down 8 s at its next reboot (the lab's power supervisor reads this).
    const status = haAdmin(['status', '--json'])
    const to = status.envelope!.result.active === 'primary' ? 'secondary' : 'primary'
    writeFileSync(nodePaths(labDir, to).rebootDelay, '8\n')
    const r = haAdmin(['failover', '--yes', '--json'], {}, short)
    assert.equal(r.status, 5, `${r.stdout}\n${r.stderr}`)
    assert.match(r.envelope!.error!.message, /did not come back from its reboot within 3s/)
    assert.deepEqual(r.envelope!.error!.actions.at(-1), 'ha failover --resume')
    const resumed = haAdmin(['failover', '--resume', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    // Done by the resumed run, or already so when the node was back before it looked.
    assert.ok(['done', 'skipped'].includes(resumed.events.find((e) => e.step === 'reboot' && e.event !== 'started')!.event))
    assertServes(to)
  })

  it('fails over and back at a terminal: the plan, roles, epoch and backup shown, the name of the node taking over typed, each step on the screen', async (t) => {
    for (const [from, to] of [['primary', 'secondary'], ['secondary', 'primary']] as const) {
      const names = {primary: 'ctl-a', secondary: 'ctl-b'}
      const screen = terminal(t, `HA_FAILOVER_DIR=${journalDir} NO_COLOR=1 ip netns exec ${labNetns.admin} ${process.execPath} ${haBin} failover --config ${lab.config}; echo "[exit $?]"; sleep 600`)
      const asked = await screen.waitFor(/type the node's name \(ctl-[ab]\):/, 60_000)
      assert.match(asked, new RegExp(`Active: ${names[from]} \\(${from}\\); taking over: ${names[to]} \\(${to}\\)`))
      assert.match(asked, /Epoch: \d+ \(from the shared storage\); after the takeover: \d+/)
      assert.match(asked, new RegExp(`Backup: a final backup made now on ${names[from]}`))
      assert.match(asked, /verify — Verify/)
      screen.type(names[to])
      const done = await screen.waitFor(new RegExp(`Failover done: ${names[to]} \\(${to}\\) is active`), 180_000)
      assert.match(done, /✓ restore-takeover \(\d+\.\ds\)/)
      assert.match(done, /✓ verify \(\d+\.\ds\)/)
      assert.equal(await screen.exitCode(), 0)
      assertServes(to)
    }
  })

  it('run on the node it reboots: says so before starting, is cut off at the reboot, and ha failover --resume there finishes', () => {
    // An admin on the secondary's console, the primary dying: ha runs there with the node's own
    // config (/etc/ha/ha.yaml, ssh to both nodes, itself included) and its journal on its own disk.
    const before = haAdmin(['status', '--json'])
    assert.equal(before.envelope!.result.active, 'primary')
    // After the failbacks above the secondary still carries the primary's identity, and its own
    // ha refuses to reach it (its known_hosts has ctl-b's key): ha rejoin makes it a standby again.
    const rejoin = haAdmin(['rejoin', 'secondary', '--json'])
    assert.equal(rejoin.status, 0, `${rejoin.stdout}\n${rejoin.stderr}`)
    const primaryKey = ssh('primary', 'cat /etc/ssh/ssh_host_ed25519_key.pub').stdout.trim().split(/\s+/).slice(0, 2).join(' ')
    const cut = ssh('secondary', 'ha failover --yes')
    assert.notEqual(cut.status, 0, `the run ends with its node: ${cut.stdout}\n${cut.stderr}`)
    assert.match(cut.stderr, /this machine is ctl-b \(secondary\), which the failover reboots: this run will be cut off at the reboot step; once the node is back, finish it there with: ha failover --resume/)
    assert.match(cut.stderr, /✓ restore-takeover/, 'it got as far as the restore')

    // Back from its reboot the node presents the primary's restored key at its own address (the
    // takeover's point): the admin's known_hosts learns it, as an admin would after checking it.
    writeFileSync(lab.knownHosts, `${readFileSync(lab.knownHosts, 'utf8').split('\n').filter((l) => l && !l.startsWith('198.18.0.3 ')).join('\n')}\n198.18.0.3 ${primaryKey}\n`)
    let back = ssh('secondary', 'true')
    for (let i = 0; i < 60 && back.status !== 0; i++) {
      spawnSync('sleep', ['1'])
      back = ssh('secondary', 'true')
    }

    assert.equal(back.status, 0, `the node is back with the primary's key: ${back.stderr}`)
    const resumed = ssh('secondary', 'ha failover --resume --yes --json')
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    const lines = resumed.stdout.split('\n')
    const envelope = JSON.parse(lines.slice(lines.indexOf('{')).join('\n'))
    assert.equal(envelope.result.resumed, true)
    assert.equal(envelope.result.to, 'secondary')
    assert.ok(['done', 'skipped'].includes(envelope.result.steps.find((s: {id: string}) => s.id === 'reboot').status), JSON.stringify(envelope.result.steps))
    assert.equal(envelope.result.steps.at(-1).id, 'verify')
    assertServes('secondary')

    const home = haAdmin(['failover', '--yes', '--json'])
    assert.equal(home.status, 0, `${home.stdout}\n${home.stderr}`)
    assertServes('primary')
  })
})

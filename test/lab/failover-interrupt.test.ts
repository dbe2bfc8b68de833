import assert from 'node:assert/strict'
import type {ChildProcess} from 'node:child_process'
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {labClearFaults, labFault, type LabNode, labNetns, nodePaths} from '../../src/lab/lab.js'
import {haBin} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {terminal} from '../helpers/tmux.js'
import {labDirFor} from './shared-lab.js'
import {failoverLab, type Run, stepStarted} from './failover-helpers.js'

// Ctrl-C during a failover, as an admin at a terminal and a script sending SIGINT do it, and a
// connection lost under a step (the active node cut off, healed later): the run stops with exit 5
// and the command that continues, and that command finishes the failover. One lab for the file; each test leaves a working pair (either direction).
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'tmux'])
const labDir = labDirFor('failover-interrupt')
const journalDir = `${labDir}-journal`
const {assertServes, down, haAdmin, lab, startHa, up} = failoverLab(labDir, journalDir)
const names = {primary: 'ctl-a', secondary: 'ctl-b'} as const

function roles(): {active: LabNode; standby: LabNode} {
  const status = haAdmin(['status', '--json'])
  assert.equal(status.status, 0, `no failover in progress before the test: ${status.stdout}`)
  const active = status.envelope!.result.active as LabNode
  return {active, standby: active === 'primary' ? 'secondary' : 'primary'}
}

/** ha status --json while a failover is stopped: exit 5 and the run with its last completed step. */
function inProgress(): {last_completed_step: null | string; from: string; to: string} {
  const status = haAdmin(['status', '--json'])
  assert.equal(status.status, 5, `ha status exits 5 while a failover is in progress: ${status.stdout}`)
  return status.envelope!.result.failover_in_progress
}

/** Every line of the newest journal is one whole JSON record, the last one too. */
function journalRecords(): Array<Record<string, any>> {
  const file = join(journalDir, readdirSync(journalDir).filter((n) => n.endsWith('.jsonl')).sort().at(-1)!)
  const text = readFileSync(file, 'utf8')
  assert.ok(text.endsWith('\n'), `${file} ends with a whole line`)
  return text.trimEnd().split('\n').map((line, i) => {
    try {
      return JSON.parse(line)
    } catch {
      assert.fail(`${file}:${i + 1} is not a whole record: ${line}`)
    }
  })
}

/** ha failover (--yes, --json unless `human`); `onStarted` runs the moment step `at` has started. */
async function runUntil(at: string, onStarted: (child: ChildProcess) => void, human = false): Promise<Run> {
  const run = startHa(['failover', '--yes', ...(human ? [] : ['--json'])])
  const sent = await run.when(human ? `… ${at} ` : stepStarted(at))
  if (sent) onStarted(run.child)
  const r = await run.done
  assert.ok(sent, `step ${at} never started:\n${r.stdout}\n${r.stderr}`)
  return r
}

/** SIGINT `times` times (0.2 s apart), `afterMs` after step `at` has started. */
async function interrupted(at: string, times: number, afterMs = 0): Promise<Run> {
  // Apart, or the kernel merges them into one pending SIGINT.
  return runUntil(at, (child) => {
    for (let i = 0; i < times; i++) setTimeout(() => child.kill('SIGINT'), afterMs + i * 200)
  })
}

/** What a lost active node must be told: --resume first (it works once the node answers), then --resume --fenced; never --abort, which needs the node. */
function assertSilentActiveAdvice(actions: string[], active: LabNode): void {
  assert.match(actions[0] ?? '', /answers ssh again: ha failover --resume$/, actions.join('\n'))
  assert.match(actions[1] ?? '', new RegExp(`is dead: make sure it is off .*then: ha failover --resume --fenced ${active} --yes$`), actions.join('\n'))
  assert.ok(!actions.some((a) => a.includes('--abort')), actions.join('\n'))
}

describe('Ctrl-C during ha failover stops at a step boundary, exit 5, and --resume finishes', {skip}, () => {
  before(up)
  after(down)

  it('at a terminal: Ctrl-C while a step runs shows exit 5 and ha failover --resume; ha status shows the run; --resume --yes finishes it', async (t) => {
    const {active, standby} = roles()
    const screen = terminal(t, `HA_FAILOVER_DIR=${journalDir} NO_COLOR=1 ip netns exec ${labNetns.admin} ${process.execPath} ${haBin} failover --config ${lab.config}; echo "[exit $?]"; sleep 600`)
    await screen.waitFor(/type the node's name \(ctl-[ab]\):/, 60_000)
    screen.type(names[standby])
    await screen.waitFor(/… release-storage /, 120_000)
    screen.keys('C-c')
    const code = await screen.exitCode(120_000)
    const shown = screen.screen()
    assert.equal(code, 5, shown)
    assert.match(shown, /interrupted/)
    assert.match(shown, /ha failover --resume/)
    // The step that was running when Ctrl-C came ended (✓), and nothing started after it.
    const steps = shown.split('\n').map((l) => l.replace(/^\^C/, '')).filter((l) => /^[✓–…✗] /.test(l))
    assert.match(steps.at(-1)!, /^[✓–] /, `the screen ends at a step boundary:\n${shown}`)
    assert.ok(!steps.some((l) => l.startsWith('✗')), shown)

    const open = inProgress()
    assert.equal(open.from, active)
    assert.equal(open.to, standby)
    assert.equal(open.last_completed_step, steps.at(-1)!.split(' ')[1], 'ha status names the last step the screen showed done')
    const resumed = haAdmin(['failover', '--resume', '--yes', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    assert.equal(resumed.envelope!.result.resumed, true)
    assertServes(standby)
  })

  it('scripted: SIGINT to ha failover --yes --json: exit 5, actions end with ha failover --resume, the events end at a step boundary', async () => {
    const {active, standby} = roles()
    const r = await interrupted('stop-services', 1)
    assert.equal(r.status, 5, `${r.stdout}\n${r.stderr}`)
    assert.equal(r.stderr, '', 'nothing on stderr under --json')
    assert.equal(r.envelope!.status, 5)
    assert.equal(r.envelope!.error!.actions.at(-1), 'ha failover --resume')
    assert.match(r.envelope!.error!.message, /interrupted/)
    // The step running at the signal finished (done, or skipped when already so); none started after.
    const last = r.events.at(-1)!
    assert.ok(['done', 'skipped'].includes(last.event), JSON.stringify(r.events))
    assert.equal(last.step, 'stop-services')
    assert.ok(!r.events.some((e) => e.event === 'failed'), JSON.stringify(r.events))
    const records = journalRecords()
    assert.ok(!records.some((x) => x.type === 'end'), 'the run is not over')
    assert.equal(inProgress().last_completed_step, 'stop-services')

    const resumed = haAdmin(['failover', '--resume', '--yes', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    assert.equal(resumed.events.find((e) => e.event !== 'started')?.step, 'preflight', 'resume re-checks from the start')
    assert.equal(resumed.envelope!.result.from, active)
    assertServes(standby)
  })

  it('a second Ctrl-C stops at once, mid-step, without a half-written journal: exit 5, and --resume finishes', async () => {
    const {standby} = roles()
    // release-ips waits about 2 s for arping -D: the second SIGINT comes while it runs.
    const r = await interrupted('release-ips', 2)
    assert.equal(r.status, 5, `${r.stdout}\n${r.stderr}`)
    assert.match(r.envelope!.error!.message, /interrupted twice/)
    assert.equal(r.envelope!.error!.actions.at(-1), 'ha failover --resume')
    const records = journalRecords()
    assert.ok(!records.some((x) => x.type === 'end'), 'the run is not over')
    assert.ok(inProgress())

    const resumed = haAdmin(['failover', '--resume', '--yes', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    assertServes(standby)
  })
  it('Ctrl-C while the node taking over reboots: the wait ends and the step is stopped, not failed (no "did not come back"); exit 5, and --resume waits for the node and finishes', async () => {
    const {standby} = roles()
    // The node stays down 8 s at its next reboot (the lab's power supervisor reads this): the
    // SIGINT, 2 s into the step, comes while ha waits for it.
    writeFileSync(nodePaths(labDir, standby).rebootDelay, '8\n')
    const r = await interrupted('reboot', 1, 2000)
    assert.equal(r.status, 5, `${r.stdout}\n${r.stderr}`)
    assert.equal(r.stderr, '', 'nothing on stderr under --json')
    assert.doesNotMatch(r.stdout, /did not come back/)
    assert.match(r.envelope!.error!.message, /^interrupted during reboot/)
    assert.equal(r.envelope!.error!.actions.at(-1), 'ha failover --resume')
    assert.ok(!r.events.some((e) => e.event === 'failed'), JSON.stringify(r.events))
    assert.deepEqual([r.events.at(-1)!.step, r.events.at(-1)!.event], ['reboot', 'stopped'])
    const records = journalRecords()
    assert.ok(!records.some((x) => x.type === 'end'), 'the run is not over')
    assert.ok(!records.some((x) => x.type === 'step' && x.event === 'failed'), 'the journal says no step failed')
    assert.equal(inProgress().last_completed_step, 'hold-ips', 'the step before the reboot')

    const resumed = haAdmin(['failover', '--resume', '--yes', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    assertServes(standby)
  })

  it('the active node cut off while a step runs on it (the partition heals later): exit 5, stopped mid-way, --resume first and --fenced after; healed, --resume finishes', async () => {
    const {active, standby} = roles()
    let cut: Promise<unknown> | undefined
    const r = await runUntil('stop-services', () => (cut = labFault(active, 'network-drop', {labDir})))
    await cut
    try {
      assert.equal(r.status, 5, `${r.stdout}\n${r.stderr}`)
      // Seen in the step that next waits on the primary (stop-services, or the next one when the stop was quicker than the cut).
      assert.match(r.envelope!.error!.message, new RegExp(`^(stop-services|release-ips|release-storage): ${active} \\(.*\\): the SSH connection was lost: .*; stopped mid-way$`, 's'))
      assertSilentActiveAdvice(r.envelope!.error!.actions, active)
    } finally {
      await labClearFaults({labDir})
    }

    assert.equal(inProgress().from, active)
    const resumed = haAdmin(['failover', '--resume', '--yes', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    assertServes(standby)
  })

  it('the active node cut off during the final backup, at a terminal\'s reading: not put back blind; --resume first and --fenced after, no --abort', async () => {
    const {active, standby} = roles()
    let cut: Promise<unknown> | undefined
    const r = await runUntil('final-backup', () => (cut = labFault(active, 'network-drop', {labDir})), true)
    await cut
    try {
      assert.equal(r.status, 5, `${r.stdout}\n${r.stderr}`)
      assert.match(r.stderr, new RegExp(`[\\w-]+: ${active} \\(.*\\): the SSH connection was lost: .*; stopped mid-way`))
      assert.doesNotMatch(r.stderr, /put-back|putting .* back failed/)
      assertSilentActiveAdvice([...r.stderr.matchAll(/^ {2}→ (.*)$/gm)].map((m) => m[1]), active)
    } finally {
      await labClearFaults({labDir})
    }

    const resumed = haAdmin(['failover', '--resume', '--yes', '--json'])
    assert.equal(resumed.status, 0, `${resumed.stdout}\n${resumed.stderr}`)
    assertServes(standby)
  })
})

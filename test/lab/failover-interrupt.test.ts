import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type LabNode, labNetns} from '../../src/lab/lab.js'
import {haBin} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {terminal} from '../helpers/tmux.js'
import {labDirFor} from './shared-lab.js'
import {failoverLab, type Run} from './failover-helpers.js'

// Ctrl-C during a failover, as an admin at a terminal and a script sending SIGINT do it: the run
// stops at a step boundary with exit 5 and the one command that continues, and that command
// finishes the failover. One lab for the file; each test leaves a working pair (either direction).
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'tmux'])
const labDir = labDirFor('failover-interrupt')
const journalDir = `${labDir}-journal`
const {assertServes, down, haAdmin, lab, up} = failoverLab(labDir, journalDir)
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

/**
 * ha failover --yes --json in the admin namespace, sent SIGINT `times` times (0.2 s apart) as
 * soon as step `at` has started (ip netns exec execs ha, so the signal reaches ha itself).
 */
async function interrupted(at: string, times: number): Promise<Run> {
  const child = spawn('ip', ['netns', 'exec', labNetns.admin, process.execPath, haBin, 'failover', '--yes', '--json', '--config', lab.config], {
    env: {...process.env, HA_FAILOVER_DIR: journalDir, NO_COLOR: '1'},
  })
  let stdout = ''
  let stderr = ''
  let sent = false
  child.stderr.on('data', (b) => (stderr += b))
  child.stdout.on('data', (b) => {
    stdout += b
    if (!sent && stdout.includes(`{"type":"step","step":"${at}","event":"started"`)) {
      sent = true
      // Apart, or the kernel merges them into one pending SIGINT.
      for (let i = 0; i < times; i++) setTimeout(() => child.kill('SIGINT'), i * 200)
    }
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000)
  const [status, signal] = await new Promise<[null | number, NodeJS.Signals | null]>((resolve) => child.on('close', (code, sig) => resolve([code, sig])))
  clearTimeout(timer)
  assert.ok(sent, `step ${at} never started:\n${stdout}\n${stderr}`)
  const lines = stdout.split('\n')
  const events = lines.filter((l) => l.startsWith('{"type":"step"')).map((l) => JSON.parse(l))
  let envelope
  try {
    envelope = JSON.parse(lines.filter((l) => !l.startsWith('{"type":"step"')).join('\n'))
  } catch {}

  return {envelope, events, signal, status, stderr, stdout}
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
})

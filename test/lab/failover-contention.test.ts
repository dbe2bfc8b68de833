import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {labClearFaults, labFault, labNetns, type LabNode} from '../../src/lab/lab.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {failoverLab, type Run, stepStarted} from './failover-helpers.js'
import {labDirFor} from './shared-lab.js'

/**
 * Two people press the button: exactly one failover acts on the pair, whatever admin host each
 * started from (here: two journal folders on the admin side, as two admin hosts have), the other
 * is refused by name (exit 11) having done nothing, and nothing of the loser stands in the way of
 * the next run. A claim left by a run that can never go on is let go with ha failover --forget.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('failover-contention')
const journalDir = `${labDir}-journal`
const otherAdmin = `${labDir}-journal-other-admin`
const {assertServes, down, haAdmin, ssh, startHa, up} = failoverLab(labDir, journalDir)

/** ha failover --yes --json from the admin host whose journals are in `dir`, not waited for. */
const startFailover = (dir: string) => startHa(['failover', '--yes', '--json'], {HA_FAILOVER_DIR: dir})

function journals(dir: string): Array<Array<Record<string, any>>> {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort()
    .map((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)))
}

function claimOn(node: LabNode): string {
  return ssh(node, 'cat /var/lib/ha/claim.json 2>/dev/null || true').stdout.trim()
}

/** The failover that won: exit 0, the pair served from `active`, no claim left, ha status clear. */
function assertOneFailover(winner: Run, active: LabNode): void {
  assert.equal(winner.status, 0, winner.stdout)
  assertServes(active)
  for (const node of ['primary', 'secondary'] as const) assert.equal(claimOn(node), '', `no claim left on ${node}`)
  const status = haAdmin(['status', '--json'])
  assert.equal(status.status, 0, status.stdout)
  assert.equal(status.envelope.result.failover_in_progress, null)
}

describe('one failover at a time, whoever starts it', {skip}, () => {
  before(up)
  after(async () => {
    await down()
    for (const dir of [otherAdmin]) spawn('rm', ['-rf', dir])
  })

  it('two runs started 50 ms apart on one admin host: one acts, the other is refused (exit 11, the holder named) and leaves nothing in the way', async () => {
    const first = startFailover(journalDir)
    await sleep(50)
    const second = startFailover(journalDir)
    const results = await Promise.all([first.done, second.done])
    const winner = results.find((r) => r.status === 0)
    const loser = results.find((r) => r !== winner)!
    assert.ok(winner, `one of them finished: ${results.map((r) => `${r.status}: ${r.stdout.slice(-400)}`).join('\n---\n')}`)
    assert.equal(loser.status, 11, loser.stdout + loser.stderr)
    assert.equal(loser.envelope.error.name, 'LockedError')
    assert.match(loser.envelope.error.message, /run \d{8}T\d{6}Z-[0-9a-f]{6} .*pid \d+/)
    assert.match(loser.envelope.error.message, /this run did nothing/)
    assert.equal(loser.events.filter((e) => e.event === 'done').length, 0, 'the loser did no step')
    assertOneFailover(winner, 'secondary')
    // Every journal here has ended: the loser's (if it made one) as refused.
    for (const records of journals(journalDir)) {
      const end = records.find((r) => r.type === 'end')
      assert.ok(end, `every journal ended: ${JSON.stringify(records[0])}`)
      if (records.every((r) => r.type !== 'step')) assert.equal(end.status, 'refused')
    }
  })

  it('a second admin host starting while the first is in its final backup is refused by name; the first finishes; --resume on the loser has nothing to resume', async (t) => {
    const first = startFailover(journalDir)
    // Whatever fails below, the next test starts only once this run has ended.
    t.after(async () => {
      await first.done
    })
    assert.ok(await first.when(stepStarted('final-backup')), first.stdout())
    const second = haAdmin(['failover', '--yes', '--json'], {HA_FAILOVER_DIR: otherAdmin})
    assert.equal(second.status, 11, second.stdout + second.stderr)
    assert.match(second.envelope.error.message, /the pair is claimed by run \S+ \(failover secondary → primary\) by root@\S+, pid \d+/)
    const seen = haAdmin(['status', '--json'], {HA_FAILOVER_DIR: otherAdmin})
    assert.equal(seen.envelope.result.claim?.run_id, second.envelope.error.details.claim.run_id, `ha status on the other admin host names the run that holds the pair: ${seen.stdout}`)
    assert.equal(seen.envelope.result.claim.alive, true)
    const won = await first.done
    assertOneFailover(won, 'primary')
    // Refused before it began (no journal), or at its claim (its journal ended as refused).
    for (const records of journals(otherAdmin)) assert.equal(records.at(-1)!.status, 'refused')
    const resume = haAdmin(['failover', '--resume', '--json'], {HA_FAILOVER_DIR: otherAdmin})
    assert.equal(resume.status, 2, resume.stdout)
    assert.match(resume.envelope.error.message, /no failover to resume/)
  })

  it('a claim whose run can never go on refuses the next run with the way out; --forget lets it go and writes it down; a damaged claim is refused by name', () => {
    const stale = '{"boot_id":"0b7d","by":"root@admin-2","from":"primary","host":"admin-2","kind":"failover","machine_id":"0123456789abcdef0123456789abcdef","pid":4242,"run_id":"20261207T010203Z-abcdef","since":"2026-12-07T01:02:03.000Z","start_ticks":"99","to":"secondary"}'
    for (const node of ['primary', 'secondary'] as const) assert.equal(ssh(node, `mkdir -p /var/lib/ha && printf '%s\\n' '${stale}' > /var/lib/ha/claim.json`).status, 0)
    const refused = haAdmin(['failover', '--yes', '--json'])
    assert.equal(refused.status, 11, refused.stdout)
    assert.match(refused.envelope.error.message, /claimed by run 20261207T010203Z-abcdef .* which ha on this machine cannot see \(another admin host\)/)
    assert.ok(refused.envelope.error.actions.includes('if that run is gone for good and will never be resumed: ha failover --forget 20261207T010203Z-abcdef, then run the command again'), JSON.stringify(refused.envelope.error.actions))
    assert.match(claimOn('primary'), /abcdef/, 'the refusal changed nothing')

    const unasked = haAdmin(['failover', '--forget', '20261207T010203Z-abcdef', '--json'])
    assert.equal(unasked.status, 4, 'no terminal, no --yes: not forgotten')
    const forgot = haAdmin(['failover', '--forget', '20261207T010203Z-abcdef', '--yes', '--json'])
    assert.equal(forgot.status, 0, forgot.stdout)
    assert.deepEqual(forgot.envelope.result.claims_removed, ['primary', 'secondary'])
    for (const node of ['primary', 'secondary'] as const) {
      assert.equal(claimOn(node), '')
      const log = ssh(node, 'cat /var/lib/ha/forgotten-claims.jsonl').stdout.trim().split('\n').map((l) => JSON.parse(l))
      assert.equal(log.at(-1).claim.run_id, '20261207T010203Z-abcdef')
      assert.match(log.at(-1).by, /^root@/)
    }

    assert.equal(ssh('secondary', 'printf "not json" > /var/lib/ha/claim.json').status, 0)
    const damaged = haAdmin(['failover', '--yes', '--json'])
    assert.equal(damaged.status, 1, damaged.stdout)
    assert.match(damaged.envelope.error.message, /secondary:\/var\/lib\/ha\/claim\.json is not a JSON claim record/)
    assert.equal(ssh('secondary', 'rm /var/lib/ha/claim.json').status, 0)
    const plan = haAdmin(['failover', '--plan', '--json'])
    assert.equal(plan.status, 0, plan.stdout)
  })

  it('a run killed mid-way whose pair another admin host took over after --forget: its --resume says it cannot go on and how to end it; --forget ends it', () => {
    // Active: primary. The first admin host's run dies in its preflight (nothing changed yet).
    const killed = haAdmin(['failover', '--yes', '--json'], {HA_FAILOVER_TEST_KILL_IN: 'preflight'})
    assert.equal(killed.signal, 'SIGKILL', killed.stdout)
    const runId = claimOn('primary').match(/"run_id":"(\S+?)"/)![1]
    // The second admin host cannot see that run's process: refused, with the way out.
    const refused = haAdmin(['failover', '--yes', '--json'], {HA_FAILOVER_DIR: otherAdmin})
    assert.equal(refused.status, 11, refused.stdout)
    assert.ok(refused.envelope.error.actions.some((a: string) => a.includes(`ha failover --forget ${runId}`)), JSON.stringify(refused.envelope.error.actions))
    assert.equal(haAdmin(['failover', '--forget', runId, '--yes', '--json'], {HA_FAILOVER_DIR: otherAdmin}).status, 0)
    const took = haAdmin(['failover', '--yes', '--json'], {HA_FAILOVER_DIR: otherAdmin})
    assert.equal(took.status, 0, took.stdout)
    assertServes('secondary')
    // Back on the first admin host: the storage's epoch moved on without this run.
    const resumed = haAdmin(['failover', '--resume', '--json'])
    assert.equal(resumed.status, 1, resumed.stdout)
    assert.match(resumed.envelope.error.message, new RegExp(`^run ${runId} cannot go on: since it started \\(at epoch \\d+\\), run \\S+ took the pair over \\(epoch \\d+, active secondary`))
    assert.deepEqual(resumed.envelope.error.actions, [`end it: ha failover --forget ${runId}`, 'ha status shows the pair as it is now'])
    assert.equal(resumed.events.length, 0, 'no step ran')
    const forgot = haAdmin(['failover', '--forget', runId, '--yes', '--json'])
    assert.equal(forgot.status, 0, forgot.stdout)
    assert.match(forgot.envelope.result.journal, /\.jsonl$/)
    const status = haAdmin(['status', '--json'])
    assert.equal(status.status, 0, status.stdout)
    assert.equal(status.envelope.result.failover_in_progress, null)
    assert.equal(status.envelope.result.active, 'secondary')
    assertServes('secondary')
  })

  it('a neighbour answering for the service IP after release-ips: the node taking over never brings it up, take-ips stops naming it, --resume finishes once it is gone', async () => {
    const intruder = ['ip', '-n', labNetns.admin, 'addr', '%s', '198.18.0.100/32', 'dev', 'ha-lab-br0']
    const neighbour = (how: 'add' | 'del') => spawnSync(intruder[0], intruder.slice(1).map((a) => (a === '%s' ? how : a)), {encoding: 'utf8'})
    const run = startFailover(journalDir)
    assert.ok(await run.when('{"type":"step","step":"release-ips","event":"done"'), run.stdout())
    assert.equal(neighbour('add').status, 0, 'the admin side now answers ARP for the service IP')
    // Watch the node taking over while the run goes on: it must never hold the address.
    let held = false
    let finished = false
    const watching = (async () => {
      while (!finished) {
        const r = spawnSync('ip', ['-n', labNetns.primary, '-j', '-4', 'addr', 'show'], {encoding: 'utf8'})
        if (r.status === 0 && r.stdout.includes('"198.18.0.100"')) held = true
        await sleep(200)
      }
    })()
    const stopped = await run.done
    finished = true
    await watching
    assert.notEqual(stopped.status, 0, stopped.stdout)
    assert.match(stopped.envelope.error.message, /take-ips: 198\.18\.0\.100\/24 answers ARP \(.+\) before primary takes it: another host holds it; not taken/)
    assert.ok(stopped.envelope.error.actions.some((a: string) => a.includes('ha failover --resume')), JSON.stringify(stopped.envelope.error.actions))
    assert.equal(held, false, 'the primary never held 198.18.0.100 while the neighbour answered for it')
    assert.doesNotMatch(ssh('primary', 'cat /etc/network/interfaces').stdout, /198\.18\.0\.100/, 'nor does its boot configuration have it')

    assert.equal(neighbour('del').status, 0)
    const resumed = haAdmin(['failover', '--resume', '--json'])
    assert.equal(resumed.status, 0, resumed.stdout)
    assertServes('primary')
  })

  it('sshd on the node taking over stops during take-ips: verify checks with connections of its own, fails on reachability, and --resume finishes once sshd is back', async () => {
    // Active: primary (the case before gave it back). The run's connections to the secondary
    // stay open; only a new one, as the admin's next ha check makes, sees sshd gone.
    const run = startFailover(journalDir)
    assert.ok(await run.when(stepStarted('take-ips')), run.stdout())
    try {
      await labFault('secondary', 'sshd-stopped', {labDir})
      const stopped = await run.done
      assert.notEqual(stopped.status, 0, stopped.stdout)
      assert.match(stopped.envelope.error.message, /^verify: ha check fails after the takeover:/)
      assert.match(stopped.envelope.error.message, /^ +reachable \(secondary\): /m)
    } finally {
      await labClearFaults({labDir})
    }

    const resumed = haAdmin(['failover', '--resume', '--json'])
    assert.equal(resumed.status, 0, resumed.stdout)
    assertServes('secondary')
  })
})

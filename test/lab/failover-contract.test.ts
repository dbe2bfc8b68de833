import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {jsonSchemaVersion} from '../../src/cli/output/reporter.js'
import {repoRoot} from '../helpers/cli.js'
import {type Shape, shapeOf} from '../helpers/json-shape.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor} from './shared-lab.js'
import {failoverLab, type Run} from './failover-helpers.js'

/**
 * The --json contract of the commands that need two nodes (ha failover, ha status, ha rejoin),
 * pinned the way test/contract/json-contract.test.ts pins the others: keys and value types, an
 * array's shape the union of all its elements' (every step event of a run, not the first one).
 * A run's per-step event lines are pinned with its final envelope.
 *
 * After an intended change: raise jsonSchemaVersion in src/cli/output/reporter.ts when a field was
 * removed, renamed or changed type (not for an addition), then regenerate on purpose:
 *   UPDATE_SNAPSHOTS=1 flock /tmp/ha-dev-lab.flock npm test -- test/lab/failover-contract.test.ts
 */
const snapshotFile = join(repoRoot, 'test/contract/failover-contract.snapshot.json')
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('failover-contract')
const journalDir = `${labDir}-journal`
const {assertServes, down, haAdmin, ssh, up} = failoverLab(labDir, journalDir)

describe('the --json contract of ha failover, ha status and ha rejoin (lab)', {skip}, () => {
  before(up)
  after(down)

  it('keeps the documented shape of each envelope and event line', () => {
    const shapes: Record<string, Shape> = {}
    /** The envelope carries the exit status and the schema version, nothing on stderr; then its shape and its events'. */
    const record = (name: string, r: Run, status: number) => {
      assert.ok(r.envelope, `${name}: stdout ends with one JSON envelope:\n${r.stdout}\n${r.stderr}`)
      assert.equal(r.status, status, `${name}: exit ${r.status}\n${r.stdout}\n${r.stderr}`)
      assert.equal(r.envelope.status, r.status, `${name}: the envelope's status is the exit code`)
      assert.equal((r.envelope as {schema_version?: number}).schema_version, jsonSchemaVersion, `${name}: schema_version`)
      assert.equal(r.stderr, '', `${name}: nothing on stderr under --json`)
      shapes[name] = shapeOf(r.envelope)
      if (r.events.length > 0) shapes[`${name}: events`] = shapeOf(r.events)
    }

    record('status (no takeover yet)', haAdmin(['status', '--json']), 0)
    record('failover --plan', haAdmin(['failover', '--plan', '--json']), 0)
    record('error (failover: confirmation needed)', haAdmin(['failover', '--json']), 4)

    // A run killed in a step leaves a failover in progress: status says so (exit 5), a new run
    // refuses, --abort puts the active node back.
    const killed = haAdmin(['failover', '--yes', '--json'], {HA_FAILOVER_TEST_KILL_IN: 'release-ips'})
    assert.equal(killed.signal, 'SIGKILL')
    record('status (failover in progress)', haAdmin(['status', '--json']), 5)
    record('error (failover: one in progress)', haAdmin(['failover', '--yes', '--json']), 5)
    record('failover --abort', haAdmin(['failover', '--abort', '--json']), 0)
    assertServes('primary')

    // A step that fails (the storage busy): its failed event carries the error, the run is aborted.
    const holder = ssh('primary', "setsid -f sh -c 'cd /var/opt/sun/xvm/db && exec sleep 300' </dev/null >/dev/null 2>&1; sleep 0.3; pgrep -x -n sleep")
    assert.equal(holder.status, 0, holder.stderr)
    try {
      record('error (failover: a step failed, aborted)', haAdmin(['failover', '--yes', '--json']), 1)
    } finally {
      ssh('primary', `kill ${holder.stdout.trim()}`)
    }

    assertServes('primary')
    record('failover', haAdmin(['failover', '--yes', '--json']), 0)
    assertServes('secondary')
    record('status (after a takeover)', haAdmin(['status', '--json']), 0)
    record('rejoin', haAdmin(['rejoin', 'primary', '--json']), 0)
    record('error (rejoin: the active node)', haAdmin(['rejoin', 'secondary', '--json']), 2)
    // Back, so that the pair is as the lab made it.
    assert.equal(haAdmin(['failover', '--yes', '--json']).status, 0)
    assertServes('primary')

    if (process.env.UPDATE_SNAPSHOTS === '1') writeFileSync(snapshotFile, `${JSON.stringify(shapes, null, 2)}\n`)
    assert.ok(existsSync(snapshotFile), `no ${snapshotFile}: generate it on purpose with UPDATE_SNAPSHOTS=1 (see this file's comment)`)
    assert.deepEqual(shapes, JSON.parse(readFileSync(snapshotFile, 'utf8')))
  })
})

import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {ha, repoRoot, tempDir} from '../helpers/cli.js'
import {makePair, moveStorage} from '../helpers/restore-fixture.js'

/**
 * Runbooks parse `--json`. The shape of every envelope (keys and value types, not values) is
 * committed in json-contract.snapshot.json, so changing the contract fails here first.
 * After an intended change: UPDATE_SNAPSHOTS=1 npm test -- test/contract
 */
const snapshotFile = join(repoRoot, 'test/contract/json-contract.snapshot.json')

type Shape = Record<string, unknown> | string | unknown[]
function shapeOf(value: unknown): Shape {
  if (value === null) return 'null'
  if (Array.isArray(value)) return value.length > 0 ? [shapeOf(value[0])] : []
  if (typeof value === 'object') {
    return Object.fromEntries(Object.keys(value as object).sort().map((k) => [k, shapeOf((value as Record<string, unknown>)[k])]))
  }

  return typeof value
}

test('the --json envelopes keep their documented shape', (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  makeControllerRoot(join(dir, 'secondary'), {hostname: 'ctl-b', uidBase: 1901})
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({include: ['/etc/opt/site/license.key'], primaryRoot: root, secondaryRoot: join(dir, 'secondary')}))
  const run = (...args: string[]) => ha([...args, '--json', '--config', config, '--node', 'primary']).json
  const shapes: Record<string, Shape> = {
    'backup (partial)': shapeOf(run('backup')),
    'backup list': shapeOf(run('backup', 'list')),
    'backup verify': shapeOf(run('backup', 'verify')),
    'error (usage)': shapeOf(ha(['backup', '--json', '--config', join(dir, 'missing.yaml')]).json),
    // Two local nodes (no ssh block): the same checks and envelope as over ssh.
    check: shapeOf(ha(['check', '--json', '--config', config]).json),
  }
  if (process.getuid?.() === 0) {
    // Restore re-owns files: root only. The storage "moves" by copying the data directory.
    const pair = makePair(t)
    assert.equal(ha(['backup', '--config', pair.config, '--node', 'primary']).status, 0)
    moveStorage(pair)
    shapes['restore --dry-run'] = shapeOf(pair.restore('--dry-run', '--json').json)
    shapes.restore = shapeOf(pair.restore('--json').json)
    shapes['restore --undo'] = shapeOf(pair.restore('--undo', '--json').json)
  } else if (process.env.CI === 'true') {
    throw new Error('the restore contract needs root under CI')
  }
  if (process.env.UPDATE_SNAPSHOTS === '1' || !existsSync(snapshotFile)) {
    writeFileSync(snapshotFile, `${JSON.stringify(shapes, null, 2)}\n`)
  }

  assert.deepEqual(shapes, JSON.parse(readFileSync(snapshotFile, 'utf8')))
})

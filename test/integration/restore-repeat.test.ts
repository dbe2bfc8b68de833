import assert from 'node:assert/strict'
import {chownSync, lstatSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {dataDirOf, makePair, moveStorage} from '../helpers/restore-fixture.js'

/**
 * Restoring the same backup a second time (a runbook retried, an admin unsure the first one ran)
 * re-owns nothing more, walks none of ha's own folder, and says nothing about the ids the first
 * run already mapped.
 */
const skip = missingPrerequisite(['root'])

/** Entries below dir, the dir itself included, leaving out `skipTop` directly below it. */
function countEntries(dir: string, skipTop: string): number {
  let n = 1
  const walk = (path: string, top: boolean) => {
    for (const entry of readdirSync(path, {withFileTypes: true})) {
      if (top && entry.name === skipTop) continue
      n++
      if (entry.isDirectory()) walk(join(path, entry.name), false)
    }
  }

  walk(dir, true)
  return n
}

describe('a repeated restore', {skip}, () => {
  test('does not walk its own .ha folder and is quiet about the ids the first run already mapped', (t) => {
    const pair = makePair(t)
    assert.equal(ha(['backup', '--config', pair.config, '--node', 'primary']).status, 0)
    moveStorage(pair)
    // A file in ha's own folder owned by an id the re-own maps: if the walk entered .ha, it
    // would be handed to 1901.
    const planted = join(dataDirOf(pair.secondary), '.ha/note-901')
    writeFileSync(planted, 'x')
    chownSync(planted, 901, 901)

    const first = pair.restore('--json')
    assert.equal(first.status, 0, first.stderr)
    const data = dataDirOf(pair.secondary)
    assert.equal(first.json!.result.reown.entries, countEntries(data, '.ha'), 'the walk counted the data directory without .ha')
    assert.ok(first.json!.result.reown.changes > 0)
    assert.equal(lstatSync(planted).uid, 901, '.ha was not re-owned')

    const second = pair.restore('--json')
    assert.equal(second.status, 0, second.stderr)
    const reown = second.json!.result.reown
    assert.equal(reown.changes, 0, 'nothing left to re-own')
    assert.equal(reown.entries, countEntries(data, '.ha'))
    assert.deepEqual([reown.unknown_users, reown.unknown_groups], [[], []], 'the ids the first run mapped to are not "ids with no saved name"')
    assert.equal(lstatSync(planted).uid, 901)

    const human = pair.restore()
    assert.equal(human.status, 0, human.stderr)
    assert.doesNotMatch(human.stdout + human.stderr, /left as is|has no saved name|19\d\d/, 'no word about 1901, 1902, 1903')
    assert.match(human.stdout, /re-own of .*: 0 of \d+ entries changed/)
  })
})

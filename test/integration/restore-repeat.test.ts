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
    assert.doesNotMatch(human.stdout + human.stderr, /left as is|has no saved name|\b19\d\d\b/, 'no word about 1901, 1902, 1903')
    assert.match(human.stdout, /re-own of .*: 0 of \d+ entries changed/)
  })

  test('when the two hosts number the same names the other way round, a second run of the same re-own is refused instead of swapping the data back', (t) => {
    const pair = makePair(t)
    // The secondary has xvm and oracle (groups xvm and dba) on the primary's ids, crossed.
    writeFileSync(join(pair.secondary, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/bin/sh\nxvm:x:902:902::/:/bin/sh\noracle:x:901:901::/:/bin/sh\njet:x:1903:902::/:/bin/sh\n')
    writeFileSync(join(pair.secondary, 'etc/group'), 'root:x:0:\ndaemon:x:1:\nxvm:x:902:jet\ndba:x:901:oracle\n')
    assert.equal(ha(['backup', '--config', pair.config, '--node', 'primary']).status, 0)
    moveStorage(pair)
    const db = join(dataDirOf(pair.secondary), 'db/data.db')
    assert.equal(lstatSync(db).uid, 902, "oracle's on the primary")

    const first = pair.restore('--json')
    assert.equal(first.status, 0, first.stderr)
    assert.equal(lstatSync(db).uid, 901, "oracle's here")

    const dry = ha(['restore', '--dry-run', '--config', pair.config, '--node', 'secondary'])
    assert.equal(dry.status, 0, dry.stderr)
    assert.match(dry.stderr, /already re-owned .* with this same mapping, in which ids trade places \(uid 901 → 902, 902 → 901; gid 901 → 902, 902 → 901\)/)

    const second = pair.restore()
    assert.equal(second.status, 1, second.stderr)
    assert.match(second.stderr, /applying it again would swap them back; nothing was changed/)
    assert.match(second.stderr, /ha restore --undo --node secondary --config \S+, then ha restore/)
    assert.equal(lstatSync(db).uid, 901, 'still oracle\'s')

    // Undone, the same restore runs again and maps the data once.
    assert.equal(pair.restore('--undo').status, 0)
    assert.equal(lstatSync(db).uid, 902)
    assert.equal(pair.restore().status, 0)
    assert.equal(lstatSync(db).uid, 901)
  })
})

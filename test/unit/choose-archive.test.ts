import assert from 'node:assert/strict'
import {test} from 'node:test'

import {chooseArchive} from '../../src/backup/choose-archive.js'

/**
 * The one choice `ha restore` and `ha check` share: by the archives' own sequence, never by name
 * or record; every archive examined on the way named with its problems; an archive outside this
 * node's spec stops the choice instead of falling back to older state.
 */
const candidates = [
  {id: '20991231T000000Z-0002', seq: 2},
  {id: '20261129T090000Z-0009', seq: 9},
  {id: 'broken', readError: 'not gzip'},
  {id: '20261129T080000Z-0005', seq: 5},
]

test('newest by seq first; damaged ones passed over with every problem; unreadable heads named first', async () => {
  const examined: string[] = []
  const choice = await chooseArchive(candidates, async (c) => {
    examined.push(c.id)
    return c.seq === 9 ? {ok: false, problems: ['a: checksum mismatch', 'b: missing', 'c', 'd']} : {ok: true, value: c.seq}
  })
  assert.deepEqual(examined, ['20261129T090000Z-0009', '20261129T080000Z-0005'], 'not by name: the 2099 name has seq 2')
  assert.equal(choice.chosen?.candidate.id, '20261129T080000Z-0005')
  assert.deepEqual(
    choice.passed_over.map((p) => [p.id, p.reason]),
    [
      ['broken', 'cannot be read: not gzip'],
      ['20261129T090000Z-0009', 'a: checksum mismatch; b: missing; c; and 1 more (ha backup verify lists them)'],
    ],
  )
  assert.deepEqual(choice.passed_over[1].problems, ['a: checksum mismatch', 'b: missing', 'c', 'd'])
})

test('an archive outside the spec stops the choice: nothing older is examined or chosen', async () => {
  const examined: string[] = []
  const choice = await chooseArchive(candidates, async (c) => {
    examined.push(c.id)
    return c.seq === 9 ? {ok: false, problems: ['/etc/shadow: not something this node saves'], stop: true} : {ok: true, value: c.seq}
  })
  assert.deepEqual(examined, ['20261129T090000Z-0009'])
  assert.equal(choice.chosen, undefined)
  assert.equal(choice.stopped_at?.id, '20261129T090000Z-0009')
})

test('nothing usable: no choice, every archive named', async () => {
  const choice = await chooseArchive(candidates, async () => ({ok: false, problems: ['the archive is truncated (gzip stream ends early)']}))
  assert.equal(choice.chosen, undefined)
  assert.deepEqual(choice.passed_over.map((p) => p.id), ['broken', '20261129T090000Z-0009', '20261129T080000Z-0005', '20991231T000000Z-0002'])
})

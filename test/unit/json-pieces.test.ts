import assert from 'node:assert/strict'
import {PassThrough} from 'node:stream'
import {test} from 'node:test'

import {JsonList} from '../../src/core/json-list.js'
import {jsonPieces, writeJsonText} from '../../src/core/json-pieces.js'

/**
 * --json output is written in pieces so that restore's envelope (every file listed) is never one
 * string; a runbook parsing it must get the very bytes JSON.stringify(envelope, null, 2) gave.
 */
function random(seed: number): () => number {
  let s = seed
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648
    return s / 2_147_483_648
  }
}

const leaves: unknown[] = [
  null, true, false, 0, -0, 1.5, -1e21, 1e-7, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER,
  '', 'plain', 'line\nbreak', 'quote " and \\ backslash', 'tab\tctl\u0001', 'ünïcødé ✓', '\uD800 lone', 'a\u2028b',
  undefined, () => 1, Symbol('s'), new Date(Date.UTC(2026, 11, 7)), {toJSON: () => ({made: [1, {by: 'toJSON'}]})},
]

function value(next: () => number, depth: number): unknown {
  const r = next()
  if (depth > 4 || r < 0.45) return leaves[Math.floor(next() * leaves.length)]
  const size = Math.floor(next() * 5)
  if (r < 0.7) {
    const list = Array.from({length: size}, () => value(next, depth + 1))
    // A list made as it is written (restore's files) is the array it lists.
    return next() < 0.3 ? new JsonList(list.length, () => list) : list
  }

  const object: Record<string, unknown> = Object.create(next() < 0.1 ? null : Object.prototype) as Record<string, unknown>
  for (let i = 0; i < size; i++) object[next() < 0.2 ? `k "${i}"\n` : `k${i}`] = value(next, depth + 1)
  return object
}

test('jsonPieces joined is JSON.stringify(value, null, indent) for generated values', () => {
  const next = random(19)
  for (let i = 0; i < 3000; i++) {
    const v = {result: value(next, 0), schema_version: 1, status: 0, warnings: i % 2 ? [] : ['w']}
    for (const indent of [2, 1, 0]) assert.equal([...jsonPieces(v, indent)].join(''), JSON.stringify(v, null, indent), `case ${i}, indent ${indent}`)
  }
})

test('jsonPieces: empty containers, sparse arrays, nested empties and a top-level leaf', () => {
  // eslint-disable-next-line no-sparse-arrays
  for (const v of [{}, [], {a: {}, b: [], c: [[], {}], d: undefined}, [, 1, ,], [undefined, () => 1], {x: {y: {z: [1, [2, [3]]]}}}, 'text', 5, null]) {
    assert.equal([...jsonPieces(v)].join(''), JSON.stringify(v, null, 2))
  }
})

test('jsonPieces refuses a circular value, as JSON.stringify does', () => {
  const a: Record<string, unknown> = {b: 1}
  a.self = {again: a}
  assert.throws(() => [...jsonPieces(a)], TypeError)
})

test('writeJsonText writes a large envelope in several writes, the same bytes as one stringify', () => {
  const files = Array.from({length: 5000}, (_, i) => ({action: 'create', gid: 0, group: 'root', mode: '0644', path: `/etc/x/${i}`, role: 'state', type: 'file', uid: 0, user: null}))
  const envelope = {result: {counts: {create: files.length}, files, node: 'secondary'}, schema_version: 1, status: 0, warnings: []}
  const out = new PassThrough()
  const writes: string[] = []
  out.on('data', (chunk: Buffer) => writes.push(chunk.toString()))
  writeJsonText(out, envelope)
  assert.ok(writes.length > 1, 'written in pieces')
  assert.equal(writes.join(''), `${JSON.stringify(envelope, null, 2)}\n`)
})

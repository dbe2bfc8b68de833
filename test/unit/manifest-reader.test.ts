import assert from 'node:assert/strict'
import {test} from 'node:test'

import {ManifestReader} from '../../src/backup/manifest-reader.js'

/**
 * manifest.json is read as its bytes arrive (every reader: verify, list, check, restore), so the
 * chunks node-tar hands over may cut it anywhere. Whatever the cut, the fields and entries read
 * must be what JSON.parse reads of the whole text, and a text JSON.parse refuses must be refused.
 */
function read(bytes: Buffer, chunk: number): {entries: unknown[]; fields: Record<string, unknown>; listed: boolean; problem?: string} {
  const fields: Record<string, unknown> = {}
  const entries: unknown[] = []
  let listed = false
  const reader = new ManifestReader({entriesList: () => (listed = true), entry: (v) => entries.push(v), field: (k, v) => (fields[k] = v)})
  for (let at = 0; at < bytes.length; at += chunk) reader.add(bytes.subarray(at, at + chunk))
  return {entries, fields, listed, problem: reader.end()}
}

const manifest = {
  created_at: '2026-12-07T00:00:00.000Z',
  entries: [
    {gid: 0, group: 'root', member: 'files/etc/a "quoted" ]}', mode: '0644', path: '/etc/a "quoted" ]}', sha256: 'ab'.repeat(32), size: 3, type: 'file'},
    {member: 'files/etc/ünï ✓', nested: {list: [1, [2, {x: '\\'}]], empty: {}}, path: '/etc/ünï ✓', size: -1.5e3, target: 'x\ny', type: 'symlink'},
    7,
    null,
    'text',
    [],
  ],
  format: 'ha-backup/1',
  host: {boot_id: 'b', hostname: 'ctl-a', node: 'primary'},
  missing: [],
  seq: 12,
}

test('manifest.json cut into chunks of any size reads as JSON.parse reads it whole', () => {
  const bytes = Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`)
  const {entries, ...head} = manifest
  for (const chunk of [1, 2, 3, 5, 7, 64, bytes.length]) {
    const got = read(bytes, chunk)
    assert.equal(got.problem, undefined, `chunk ${chunk}`)
    assert.ok(got.listed)
    assert.deepEqual(got.entries, entries, `chunk ${chunk}`)
    assert.deepEqual(got.fields, head, `chunk ${chunk}`)
  }
})

test('text that is not one JSON object is refused, whatever the chunks', () => {
  const cases: Array<[string | Buffer, RegExp]> = [
    ['', /not valid JSON: it is empty/],
    ['[1, 2]', /is not a JSON object/],
    ['null', /is not a JSON object/],
    ['{"format": "ha-backup/1", ', /not valid JSON: it ends before/],
    ['{"entries": [1, ]}', /not valid JSON/],
    ['{"entries": [1 2]}', /not valid JSON/],
    ['{"a": 1,}', /not valid JSON/],
    ['{"a": 1} x', /not valid JSON/],
    ['{"a": tru}', /not valid JSON/],
    ['{"a": "line\nbreak"}', /not valid JSON/],
    [Buffer.concat([Buffer.from('{"a": "'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), /not valid UTF-8/],
    [Buffer.from('\ufeff{"a": 1}'), /byte-order mark/],
    // JSON.parse keeps the last of two; a reader streaming the first list must not.
    ['{"entries": [], "entries": [{"path": "/etc/shadow"}]}', /"entries" is given twice/],
  ]
  for (const [text, expected] of cases) {
    const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text)
    for (const chunk of [1, 3, 1000]) assert.match(read(bytes, chunk).problem ?? 'read', expected, `${JSON.stringify(text.toString())} in chunks of ${chunk}`)
  }
})

import assert from 'node:assert/strict'
import {test} from 'node:test'

import {type BackupManifest, type ManifestEntry, manifestBody, manifestBodyLength, manifestBodyPieces} from '../../src/backup/manifest.js'

/**
 * ha backup writes manifest.json an entry at a time (manifestBodyPieces) so that the whole text is
 * never held; the bytes must be exactly those of JSON.stringify(manifest, null, 1) + "\n", which
 * is what every archive before held and what a person reads by hand.
 */
const entry = (path: string, extra: Partial<ManifestEntry> = {}): ManifestEntry => ({
  gid: 0,
  group: 'root',
  member: `files${path}`,
  mode: '0644',
  mtime: '2026-12-07T10:00:00.000Z',
  path,
  role: 'state',
  sha256: 'a'.repeat(64),
  size: 12,
  type: 'file',
  uid: 0,
  user: null,
  ...extra,
} as ManifestEntry)

const manifest = (entries: ManifestEntry[], missing: BackupManifest['missing'] = []): BackupManifest => ({
  created_at: '2026-12-07T10:00:00.000Z',
  data_dir: '/var/opt/sun/xvm',
  entries,
  format: 'ha-backup/1',
  ha_version: '1.0.0',
  host: {boot_id: 'b0', hostname: 'ctl-a', node: 'primary'},
  id: '20261207T100000Z-0001',
  missing,
  product_version: '2.1.0.1234',
  seq: 1,
})

const cases: Array<[string, BackupManifest]> = [
  ['no entries, nothing missing', manifest([])],
  ['one entry', manifest([entry('/etc/hosts')])],
  [
    'files, a directory, a symlink; odd names; something missing',
    manifest(
      [
        entry('/etc', {sha256: null, size: 0, type: 'directory'} as Partial<ManifestEntry>),
        entry('/etc/a "quoted"\nname\\with\tescapes'),
        entry('/etc/ünïcødé ✓ 𝄞'),
        entry('/etc/localtime', {sha256: 'b'.repeat(64), size: 0, target: '/usr/share/zoneinfo/UTC', type: 'symlink'} as Partial<ManifestEntry>),
      ],
      [{path: '/etc/opt/x | /etc/opt/y', required: false, role: 'state'}],
    ),
  ],
]

for (const [name, m] of cases) {
  test(`manifest.json's bytes, written a piece at a time, are JSON.stringify's: ${name}`, () => {
    const whole = Buffer.from(`${JSON.stringify(m, null, 1)}\n`)
    assert.equal(manifestBody(m).toString(), whole.toString())
    assert.equal(manifestBodyLength(m), whole.length)
    assert.ok([...manifestBodyPieces(m)].length >= m.entries.length, 'one piece or more per entry')
    assert.deepEqual(JSON.parse(manifestBody(m).toString()), m)
  })
}

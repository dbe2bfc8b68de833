import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {identityChange, lineWidth} from '../../src/restore/identity-preview.js'

/** The takeover confirmation's identity lines (src/restore/identity-preview.ts), on real files. */
function files(t: {after: (fn: () => void) => void}, now: string, saved: string) {
  const dir = mkdtempSync(join(tmpdir(), 'ha-identity-'))
  t.after(() => rmSync(dir, {force: true, recursive: true}))
  writeFileSync(join(dir, 'now'), now)
  writeFileSync(join(dir, 'saved'), saved)
  return {dir, now: join(dir, 'now'), saved: join(dir, 'saved')}
}

test('an escape sequence planted in an archive\'s /etc/hosts is shown escaped, never sent to the terminal', (t) => {
  const f = files(t, '127.0.0.1 localhost\n', '127.0.0.1 localhost\n198.18.0.2 \u001B]0;owned\u0007ctl-a\n')
  const change = identityChange('/etc/hosts', f.now, f.saved)
  assert.deepEqual(change.added, ['198.18.0.2 \\x1b]0;owned\\x07ctl-a'])
  assert.doesNotMatch(JSON.stringify(change), /\\u001b/i)
})

test('the network configuration shows only its address lines; long lines are cut; past 4 lines a side, a count', (t) => {
  const many = (base: number) => Array.from({length: 6}, (_, i) => `iface eth${i} inet static\n  address 198.18.${base}.${i}/24\n  mtu 1500`).join('\n')
  const f = files(t, many(0), many(1))
  const change = identityChange('/etc/network/interfaces', f.now, f.saved)
  assert.deepEqual(change.removed, ['address 198.18.0.0/24', 'address 198.18.0.1/24', 'address 198.18.0.2/24', 'address 198.18.0.3/24'])
  assert.equal(change.added.length, 4)
  assert.equal(change.more, 4)
  const long = files(t, `198.18.0.2 ${'a'.repeat(200)}\n`, '198.18.0.2 ctl-a\n')
  const cut = identityChange('/etc/hosts', long.now, long.saved)
  assert.equal(cut.removed[0].length, lineWidth)
  assert.ok(cut.removed[0].endsWith('…'))
})

test('the hostname is one old → new line; a symlink in the host\'s place is not followed', (t) => {
  const f = files(t, 'ctl-b\n', 'ctl-a\n')
  assert.equal(identityChange('/etc/hostname', f.now, f.saved).summary, '"ctl-b" → "ctl-a"')
  const link = join(f.dir, 'link')
  symlinkSync(f.now, link)
  assert.equal(identityChange('/etc/hostname', link, f.saved).summary, '(none) → "ctl-a"')
})

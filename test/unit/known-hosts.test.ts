import assert from 'node:assert/strict'
import {createHmac} from 'node:crypto'
import {test} from 'node:test'

import {judgeHostKey, parseKnownHosts, preferredHostKeyAlgorithms} from '../../src/hosts/known-hosts.js'

// Key blobs built by hand: string type, then arbitrary bytes. Enough for lookup and comparison.
const blob = (type: string, fill: number) => {
  const name = Buffer.from(type)
  const length = Buffer.alloc(4)
  length.writeUInt32BE(name.length)
  return Buffer.concat([length, name, Buffer.alloc(32, fill)])
}

const ed1 = blob('ssh-ed25519', 1)
const ed2 = blob('ssh-ed25519', 2)
const rsa = blob('ssh-rsa', 3)
const line = (hosts: string, key: Buffer, type = 'ssh-ed25519') => `${hosts} ${type} ${key.toString('base64')}`

test('parses plain, hashed and marked lines; skips comments, blanks, unknown markers and corrupt keys', () => {
  const salt = Buffer.alloc(20, 7)
  const hash = createHmac('sha1', salt).update('[ctl-b]:2222').digest()
  const text = [
    '# comment',
    '   ',
    line('ctl-a', ed1),
    `|1|${salt.toString('base64')}|${hash.toString('base64')} ssh-ed25519 ${ed2.toString('base64')}`,
    `@revoked * ${rsa.toString('base64').replace(/^/, 'ssh-rsa ')}`,
    `@cert-authority *.example ${line('', ed1).trim()}`,
    `@frobnicate ctl-a ${line('', ed1).trim()}`,
    'ctl-a ssh-ed25519 not*base64',
    line('ctl-a', ed1, 'ssh-rsa'),
    'ctl-a ssh-ed25519',
    `${line('ctl-crlf', ed1)}\r`,
  ].join('\n')
  const entries = parseKnownHosts(text)
  assert.deepEqual(
    entries.map((e) => [e.line, e.marker ?? '', e.keyType]),
    [
      [3, '', 'ssh-ed25519'],
      [4, '', 'ssh-ed25519'],
      [5, 'revoked', 'ssh-rsa'],
      [6, 'cert-authority', 'ssh-ed25519'],
      [11, '', 'ssh-ed25519'],
    ],
  )
  assert.equal(judgeHostKey(entries, 'ctl-b', 2222, ed2).kind, 'known', 'hashed [host]:port entry')
  assert.equal(judgeHostKey(entries, 'ctl-b', 22, ed2).kind, 'unknown', 'port 22 is not [ctl-b]:2222')
})

test('judges known, unknown, changed and revoked keys', () => {
  const entries = parseKnownHosts([line('ctl-a,ctl-a.lab', ed1), line('ctl-r', rsa, 'ssh-rsa'), `@revoked elsewhere ${line('', ed2).trim()}`].join('\n'))
  assert.deepEqual(judgeHostKey(entries, 'ctl-a', 22, ed1), {fingerprint: judgeHostKey(entries, 'ctl-a', 22, ed1).fingerprint, kind: 'known', line: 1})
  assert.equal(judgeHostKey(entries, 'CTL-A.LAB', 22, ed1).kind, 'known', 'host names compare case-insensitively')
  assert.equal(judgeHostKey(entries, 'ctl-z', 22, ed1).kind, 'unknown')
  const changed = judgeHostKey(entries, 'ctl-a', 22, blob('ssh-ed25519', 9))
  assert.equal(changed.kind, 'changed')
  assert.deepEqual(changed.kind === 'changed' && changed.known.map((k) => k.line), [1])
  // Only an RSA key is known: an ed25519 key offered instead is a change, not a new host.
  assert.equal(judgeHostKey(entries, 'ctl-r', 22, ed1).kind, 'changed')
  // ed2 is revoked for another host name: a revoked key is refused wherever it turns up.
  assert.equal(judgeHostKey(entries, 'ctl-a', 22, ed2).kind, 'revoked')
})

test('negation vetoes a line even when another pattern on it matches; wildcards match', () => {
  const entries = parseKnownHosts(line('*.lab,!db.lab,ctl-?', ed1))
  assert.equal(judgeHostKey(entries, 'web.lab', 22, ed1).kind, 'known')
  assert.equal(judgeHostKey(entries, 'db.lab', 22, ed1).kind, 'unknown')
  assert.equal(judgeHostKey(entries, 'ctl-b', 22, ed1).kind, 'known')
  assert.equal(judgeHostKey(entries, 'ctl-bb', 22, ed1).kind, 'unknown')
  assert.equal(judgeHostKey(entries, 'weblab', 22, ed1).kind, 'unknown', 'a dot in a pattern is a dot')
})

test('host key algorithms offered put the known key types first', () => {
  assert.deepEqual(preferredHostKeyAlgorithms(parseKnownHosts(line('h', rsa, 'ssh-rsa'))).slice(0, 4), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519'])
  assert.equal(preferredHostKeyAlgorithms([])[0], 'ssh-ed25519')
})

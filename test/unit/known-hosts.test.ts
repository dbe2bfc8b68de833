import assert from 'node:assert/strict'
import {createHmac, generateKeyPairSync} from 'node:crypto'
import {test} from 'node:test'

import {preferredHostKeyAlgorithms} from '../../src/hosts/host-key-algorithms.js'
import {judgeHostKey} from '../../src/hosts/host-key-verdict.js'
import {parseKnownHosts} from '../../src/hosts/known-hosts.js'
import {decodeBase64Strict} from '../../src/hosts/ssh-key-blob.js'

// Real public key blobs, built from keys Node generates: the parser only keeps real keys.
const sshString = (b: Buffer | string) => {
  const body = Buffer.from(b)
  const length = Buffer.alloc(4)
  length.writeUInt32BE(body.length)
  return Buffer.concat([length, body])
}

const ed25519 = () => {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({format: 'jwk'})
  return Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.from(jwk.x!, 'base64url'))])
}

const ecdsa256 = () => {
  const jwk = generateKeyPairSync('ec', {namedCurve: 'P-256'}).publicKey.export({format: 'jwk'})
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')])
  return Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString('nistp256'), sshString(point)])
}

const rsaKey = generateKeyPairSync('rsa', {modulusLength: 1024}).publicKey.export({format: 'jwk'})
const mpint = (b: Buffer) => sshString(b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b)
const rsa = Buffer.concat([sshString('ssh-rsa'), mpint(Buffer.from(rsaKey.e!, 'base64url')), mpint(Buffer.from(rsaKey.n!, 'base64url'))])

const ed1 = ed25519()
const ed2 = ed25519()
const ec1 = ecdsa256()
const typeOf = (key: Buffer) => key.subarray(4, 4 + key.readUInt32BE(0)).toString()
const kh = (hosts: string, key: Buffer, type = typeOf(key)) => `${hosts} ${type} ${key.toString('base64')}`

test('base64 is decoded as OpenSSH b64_pton decodes it, not as Node does', () => {
  assert.deepEqual(decodeBase64Strict('QUJD'), Buffer.from('ABC'))
  assert.deepEqual(decodeBase64Strict('QUI='), Buffer.from('AB'))
  assert.deepEqual(decodeBase64Strict('QQ=='), Buffer.from('A'))
  assert.deepEqual(decodeBase64Strict('Q\vQ=\r=\f'), Buffer.from('A'), 'C whitespace is skipped anywhere')
  for (const bad of ['QUI', 'QQ', 'QQ=', 'QQ===', 'QUI==', 'QUJD=', 'Q===', 'QR==', 'QUJ=', 'QUI=A', 'QU-D', 'QU_D', 'QUJD\u00A0', 'QQ==QQ==']) {
    assert.equal(decodeBase64Strict(bad), undefined, `${JSON.stringify(bad)} is refused`)
  }
})

test('parses plain, hashed and marked lines; skips what ssh skips', () => {
  const salt = Buffer.alloc(20, 7)
  const hash = createHmac('sha1', salt).update('[ctl-b]:2222').digest()
  const text = [
    '# comment',
    '   ',
    kh('ctl-a', ed1),
    `|1|${salt.toString('base64')}|${hash.toString('base64')} ${kh('', ed2).trim()}`,
    `@revoked * ${kh('', rsa).trim()}`,
    `@cert-authority *.example ${kh('', ed1).trim()}`,
    `@frobnicate ctl-a ${kh('', ed1).trim()}`,
    'ctl-a ssh-ed25519 not*base64',
    kh('ctl-a', ed1, 'ssh-rsa'),
    'ctl-a ssh-ed25519',
    `${kh('ctl-crlf', ed1)}\r`,
    `\v${kh('ctl-vt', ed1)}`,
    `${kh('ctl-nul', ed1)}\0 trailing`,
    `ctl-nul2\0${kh('', ed1)}`,
    kh('ctl-rsa512', rsa, 'rsa-sha2-512'),
    kh('ctl-ec', ec1, 'ecdsa-sha2-nistp384'),
    `${kh('ctl-junk', ed1)}AAAA`,
    `ctl-nul3 \0${kh('', ed1).trim()}`,
  ].join('\n')
  const entries = parseKnownHosts(text)
  assert.deepEqual(
    entries.map((e) => [e.line, e.marker ?? '', e.hosts, e.keyType]),
    [
      [3, '', 'ctl-a', 'ssh-ed25519'],
      [4, '', `|1|${salt.toString('base64')}|${hash.toString('base64')}`, 'ssh-ed25519'],
      [5, 'revoked', '*', 'ssh-rsa'],
      [6, 'cert-authority', '*.example', 'ssh-ed25519'],
      [11, '', 'ctl-crlf', 'ssh-ed25519'],
      [12, '', '\vctl-vt', 'ssh-ed25519'],
      [13, '', 'ctl-nul', 'ssh-ed25519'],
      // A NUL that ends the host field reads as the blank (ssh-keygen -F ctl-nul2 finds it); one after the blank ends the line.
      [14, '', 'ctl-nul2', 'ssh-ed25519'],
      [15, '', 'ctl-rsa512', 'rsa-sha2-512'],
    ],
  )
  assert.equal(judgeHostKey(entries, 'ctl-b', 2222, ed2).kind, 'known', 'hashed [host]:port entry')
  assert.equal(judgeHostKey(entries, 'ctl-b', 22, ed2).kind, 'unknown', 'port 22 is not [ctl-b]:2222')
  assert.equal(judgeHostKey(entries, 'ctl-vt', 22, ed1).kind, 'unknown', 'a vertical tab is part of the host field')
  assert.equal(judgeHostKey(entries, 'ctl-rsa512', 22, rsa).kind, 'revoked', 'an rsa-sha2-512 line is the RSA key, and * revokes it')
})

test('hashed entries match only in the exact form ssh writes', () => {
  const name = '[ctl-h]:2222'
  const form = (salt: Buffer, mangle = (s: string) => s) => `${mangle(`|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`)} ${kh('', ed1).trim()}`
  assert.equal(judgeHostKey(parseKnownHosts(form(Buffer.alloc(20, 1))), 'ctl-h', 2222, ed1).kind, 'known')
  for (const [what, text] of [
    ['19-byte salt', form(Buffer.alloc(19, 1))],
    ['21-byte salt', form(Buffer.alloc(21, 1))],
    ['hash without padding', form(Buffer.alloc(20, 1), (s) => s.replace(/=$/, ''))],
    ['extra padding', form(Buffer.alloc(20, 1), (s) => `${s}=`)],
    ['trailing bytes', form(Buffer.alloc(20, 1), (s) => `${s}AAAA`)],
    ['other magic', form(Buffer.alloc(20, 1), (s) => s.replace('|1|', '|2|'))],
  ]) {
    assert.equal(judgeHostKey(parseKnownHosts(text), 'ctl-h', 2222, ed1).kind, 'unknown', what)
  }
})

test('judges known, unknown, changed and revoked keys; [host]:port falls back to the bare host', () => {
  const entries = parseKnownHosts([kh('ctl-a,ctl-a.lab', ed1), kh('ctl-r', rsa), `@revoked elsewhere ${kh('', ed2).trim()}`, kh('ctl-p', ed1)].join('\n'))
  assert.equal(judgeHostKey(entries, 'ctl-a', 22, ed1).kind, 'known')
  assert.equal(judgeHostKey(entries, 'CTL-A.LAB', 22, ed1).kind, 'known', 'host names compare case-insensitively')
  assert.equal(judgeHostKey(entries, 'ctl-z', 22, ed1).kind, 'unknown')
  const changed = judgeHostKey(entries, 'ctl-a', 22, ed2)
  assert.equal(changed.kind, 'changed')
  assert.deepEqual(changed.kind === 'changed' && changed.known.map((k) => k.line), [1])
  assert.equal(judgeHostKey(entries, 'ctl-r', 22, ed1).kind, 'changed', 'only an RSA key is known: an ed25519 key is a change')
  assert.equal(judgeHostKey(entries, 'ctl-a', 22, ed2).kind, 'changed', 'a @revoked line for another host does not apply')
  assert.equal(judgeHostKey(entries, 'ctl-p', 2222, ed1).kind, 'known', 'no [ctl-p]:2222 line: the bare name holds the key')
  assert.equal(judgeHostKey(entries, 'ctl-p', 2222, ed2).kind, 'unknown', 'the bare name with another key does not make [ctl-p]:2222 changed')
})

test('negation vetoes a line even when another pattern on it matches; wildcards match', () => {
  const entries = parseKnownHosts(kh('*.lab,!db.lab,ctl-?', ed1))
  assert.equal(judgeHostKey(entries, 'web.lab', 22, ed1).kind, 'known')
  assert.equal(judgeHostKey(entries, 'db.lab', 22, ed1).kind, 'unknown')
  assert.equal(judgeHostKey(entries, 'ctl-b', 22, ed1).kind, 'known')
  assert.equal(judgeHostKey(entries, 'ctl-bb', 22, ed1).kind, 'unknown')
  assert.equal(judgeHostKey(entries, 'weblab', 22, ed1).kind, 'unknown', 'a dot in a pattern is a dot')
})

test('host key algorithms: ssh default order, known types first unless ed25519 is known', () => {
  const order = (text: string) => preferredHostKeyAlgorithms(parseKnownHosts(text), 'h', 22)
  assert.deepEqual(order(''), ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'])
  assert.deepEqual(order(kh('h', rsa)).slice(0, 3), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-ed25519'])
  // RSA listed first in the file still does not come first when ed25519 is known.
  assert.deepEqual(order([kh('h', rsa), kh('h', ed1)].join('\n'))[0], 'ssh-ed25519')
  assert.deepEqual(order([kh('h', rsa), kh('h', ec1)].join('\n')).slice(0, 4), ['ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-ed25519'])
  // A type whose first key is revoked does not count as known.
  assert.deepEqual(order([kh('h', ec1), `@revoked h ${kh('', ec1).trim()}`].join('\n'))[0], 'ssh-ed25519')
  assert.ok(!order('').includes('ssh-rsa' as never), 'SHA-1 ssh-rsa signatures are not offered, as in ssh 9.2')
})

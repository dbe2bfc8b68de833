import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, test} from 'node:test'

import {entryMatchesHost, lookupName, parseKnownHosts} from '../../src/hosts/known-hosts.js'
import {fingerprint} from '../../src/hosts/ssh-key-blob.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey} from '../helpers/sshd.js'

/**
 * Our known_hosts lookup must find exactly the lines OpenSSH's own `ssh-keygen -F` finds, on the
 * same files: plain, hashed by `ssh-keygen -H`, [host]:port, wildcards, negation and markers.
 */
const skip = missingPrerequisite(['sshd'])

/** ssh-keygen -F NAME: the matching line numbers and their marker (REVOKED / CA). */
function sshKeygenFind(file: string, name: string): string[] {
  const r = spawnSync('ssh-keygen', ['-F', name, '-f', file], {encoding: 'utf8'})
  return [...r.stdout.matchAll(/^# Host .* found: line (\d+) ?(\S*)/gm)].map((m) => `${m[1]}${m[2] ? ` ${m[2]}` : ''}`)
}

function ourFind(file: string, name: string): string[] {
  return parseKnownHosts(readFileSync(file))
    .filter((e) => entryMatchesHost(e, lookupName(name)))
    .map((e) => `${e.line}${e.marker === 'revoked' ? ' REVOKED' : e.marker === 'cert-authority' ? ' CA' : ''}`)
}

describe('known_hosts lookup agrees with ssh-keygen -F', {skip}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ha-kh-'))
  after(() => rmSync(dir, {force: true, recursive: true}))
  const k1 = makeKey(join(dir, 'k1'))
  const k2 = makeKey(join(dir, 'k2'), 'ecdsa')
  const k3 = makeKey(join(dir, 'k3'), 'rsa')
  const plain = join(dir, 'known_hosts')
  writeFileSync(
    plain,
    [
      '# a comment',
      `ctl-a,198.18.0.2 ${k1}`,
      '',
      `[198.18.0.3]:2222 ${k2} root@ctl-b`,
      `198.18.0.3 ${k3}`,
      `@revoked ctl-a ${k2}`,
      `@cert-authority *.lab.example ${k1}`,
      `*.lab.example,!bad.lab.example ${k3}`,
      `CTL-C ${k1}`,
      `ctl-?d ${k2}`,
      `[127.0.0.1]:40022,[127.0.0.1]:40023 ${k1}`,
      `127.0.0.1 ${k2}`,
      '',
    ].join('\n'),
  )
  const hashed = join(dir, 'known_hosts.hashed')
  copyFileSync(plain, hashed)
  execFileSync('ssh-keygen', ['-H', '-f', hashed], {stdio: 'ignore'})

  const names = [
    'ctl-a', '198.18.0.2', '[198.18.0.3]:2222', '198.18.0.3', '[198.18.0.3]:22', 'x.lab.example', 'bad.lab.example',
    'ctl-c', 'CTL-C', 'ctl-dd', 'ctl-d', '[127.0.0.1]:40022', '[127.0.0.1]:40023', '127.0.0.1', '[127.0.0.1]:40024', 'nowhere',
  ]
  for (const [label, file] of [['plain', plain], ['hashed (ssh-keygen -H)', hashed]] as const) {
    test(`${label}: same lines as ssh-keygen -F for ${names.length} names`, () => {
      const content = readFileSync(file, 'utf8')
      if (file === hashed) assert.match(content, /^\|1\|/m, 'ssh-keygen -H hashed some lines')
      // ssh(1) lowercases the host name before it looks it up (hashed lines hold the lowercase
      // name); ssh-keygen -F does not, so it is asked what ssh itself would ask.
      for (const name of names) assert.deepEqual(ourFind(file, name), sshKeygenFind(file, name.toLowerCase()), `lookup of ${name} in ${label}`)
    })
  }

  test('fingerprints are printed as ssh-keygen -l prints them', () => {
    for (const key of [k1, k2, k3]) {
      const theirs = execFileSync('ssh-keygen', ['-lf', '-'], {encoding: 'utf8', input: key}).split(' ')[1]
      assert.equal(fingerprint(Buffer.from(key.split(' ')[1], 'base64')), theirs)
    }
  })
})

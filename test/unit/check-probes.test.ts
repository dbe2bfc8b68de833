import assert from 'node:assert/strict'
import {test} from 'node:test'

import {installPaths, probeBudgetS, probeFailure} from '../../src/check/probes.js'

test('install paths: every manifest path and any_of alternative, globs cut back to their directory, and "/"', () => {
  const paths = installPaths([
    {path: '/etc/passwd', required: true, role: 'accounts'},
    {path: '/etc/ssh/ssh_host_*_key', required: true, role: 'identity'},
    {any_of: ['/etc/netplan', '/etc/network/interfaces'], required: false, role: 'identity'},
    {path: '/n1gc-setup/.version.properties', required: true, role: 'state'},
    {path: '/etc/passwd', required: false, role: 'state'},
  ])
  assert.deepEqual(paths, ['/etc/passwd', '/etc/ssh', '/etc/netplan', '/etc/network/interfaces', '/n1gc-setup/.version.properties', '/'])
})

test('each probe has a third of the batch time (at least 1s), so one stuck probe is named before the batch dies', () => {
  assert.equal(probeBudgetS(30), 10)
  assert.equal(probeBudgetS(60), 20)
  assert.equal(probeBudgetS(0.001), 1)
})

test('a probe killed by its timeout is named with what it was doing; other failures give stderr', () => {
  const base = {argv: ['timeout', '-k', '2s', '10s', 'cat', '--', '/x'], id: 'version', stdout: Buffer.alloc(0)}
  assert.equal(probeFailure({...base, code: 124, stderr: Buffer.alloc(0)}, 10), 'reading the version file timed out after 10s and was killed (probe version)')
  assert.equal(probeFailure({...base, code: 137, stderr: Buffer.alloc(0)}, 10), 'reading the version file timed out after 10s and was killed (probe version)')
  assert.equal(probeFailure({...base, code: 127, stderr: Buffer.alloc(0)}), 'reading the version file: cat is not installed')
  assert.equal(probeFailure({...base, code: 1, stderr: Buffer.from('cat: /x: Permission denied\n')}), 'reading the version file failed (exit 1): cat: /x: Permission denied')
})

import assert from 'node:assert/strict'
import {test} from 'node:test'

import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {installPaths, parseRestorePlaces, probeBudgetS, probeFailure, restorePlacesScript} from '../../src/check/probes.js'

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

test('restore places (real sh and df): the staging place\'s kind, then one df row per path, a missing path measured at its nearest ancestor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ha-places-'))
  try {
    mkdirSync(join(dir, 'var tmp'), {recursive: true})
    symlinkSync('/tmp', join(dir, 'link'))
    const run = (...paths: string[]) => execFileSync('sh', ['-c', restorePlacesScript, 'ha-restore-places', ...paths], {encoding: 'utf8'})
    const expected = execFileSync('df', ['-P', '-B1', '--', dir], {encoding: 'utf8'}).split('\n')[1].split(/\s+/)[0]
    const a = parseRestorePlaces(run(join(dir, 'var tmp'), join(dir, 'etc/not/there'), join(dir, 'var tmp')), 3)
    assert.equal(a?.kind, 'directory')
    assert.equal(a?.rows.length, 3)
    for (const row of a!.rows) assert.equal(row.filesystem, expected)
    assert.equal(parseRestorePlaces(run(join(dir, 'link')), 1)?.kind, 'symbolic link', 'a symlink is not followed')
    assert.equal(parseRestorePlaces(run(join(dir, 'none')), 1)?.kind, 'missing')
    assert.equal(parseRestorePlaces(run(join(dir, 'none')), 2), undefined, 'a missing row is no answer')
  } finally {
    rmSync(dir, {force: true, recursive: true})
  }
})

import assert from 'node:assert/strict'
import {test} from 'node:test'

import {storageCheck} from '../../src/check/checks/storage.js'
import type {NodeFacts} from '../../src/check/types.js'
import {probeIds} from '../../src/check/probes.js'
import {type Config, configSchema} from '../../src/config/schema.js'

/**
 * FAKE: ZFS cannot run here (no kernel module), so these feed recorded `zpool list` answers to
 * the storage check. The mount kind is tested for real (tmpfs mount, findmnt over SSH) in
 * test/integration/check.test.ts.
 */
const config: Config = configSchema.parse({
  data_dir: '/var/opt/sun/xvm',
  nodes: {primary: {hostname: 'a'}, secondary: {hostname: 'b'}},
  storage: {kind: 'zfs', pool: 'xvmpool'},
})

const fakeZpool = (code: number, stdout: string, stderr = ''): NodeFacts => ({
  probes: new Map([[probeIds.storage, {argv: ['zpool'], code, id: probeIds.storage, stderr: Buffer.from(stderr), stdout: Buffer.from(stdout)}]]),
  report: {address: 'local', elapsed_ms: 0, node: 'primary', reachable: true},
  root: '/',
})
const imported = () => fakeZpool(0, 'xvmpool\tONLINE\n')
const exported = () => fakeZpool(1, '', "cannot open 'xvmpool': no such pool\n")

test('FAKE zpool: imported on one node only passes and names it with the pool health', () => {
  const {check, holders} = storageCheck(config, {primary: imported(), secondary: exported()})
  assert.deepEqual(holders, ['primary'])
  assert.equal(check.status, 'pass')
  assert.equal(check.summary, 'pool xvmpool is imported on primary only (ONLINE)')
})

test('FAKE zpool: imported on both fails', () => {
  assert.equal(storageCheck(config, {primary: imported(), secondary: imported()}).check.status, 'fail')
})

test('FAKE zpool: imported nowhere warns; zpool missing on a node fails rather than guessing', () => {
  assert.equal(storageCheck(config, {primary: exported(), secondary: exported()}).check.status, 'warn')
  const missing = storageCheck(config, {primary: imported(), secondary: fakeZpool(127, '', 'sh: zpool: not found')}).check
  assert.equal(missing.status, 'fail')
  assert.match(missing.summary, /secondary: zpool is not installed/)
})

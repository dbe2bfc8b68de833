import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {acquireLock} from '../../src/lock/lock.js'

/**
 * A run killed between writing the lock's temp file and linking it leaves `.ha.lock.tmp-<pid>`;
 * the next holder of the lock removes it (issue 12: nothing of a killed command outlives the
 * next one), but never the temp of a run that may still be linking it.
 */
test('the next holder of the lock removes a killed run\'s lock temp file, and keeps a live run\'s fresh one', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'ha-lock-temps-'))
  t.after(() => rmSync(data, {force: true, recursive: true}))
  mkdirSync(join(data, '.ha'), {mode: 0o700})
  // A pid that is certainly gone: a child that has exited and been reaped.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {encoding: 'utf8'}).stdout
  const abandoned = join(data, '.ha', `.ha.lock.tmp-${dead}`)
  const live = join(data, '.ha', `.ha.lock.tmp-${process.ppid}`)
  const oldLive = join(data, '.ha', `.ha.lock.tmp-1`)
  for (const f of [abandoned, live, oldLive]) writeFileSync(f, '{}\n', {mode: 0o600})
  const minutesAgo = new Date(Date.now() - 5 * 60_000)
  utimesSync(oldLive, minutesAgo, minutesAgo)

  const lock = await acquireLock(join(data, '.ha', 'ha.lock'), 'test')
  await lock.release()
  assert.equal(existsSync(abandoned), false, 'the temp of a pid that is gone was removed')
  assert.equal(existsSync(oldLive), false, 'a temp older than a minute was removed whatever its pid')
  assert.equal(existsSync(live), true, 'a fresh temp of a live pid was kept: that run may be linking it')
})

import assert from 'node:assert/strict'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {compileCacheDir, onlyRootWrites} from '../../src/cli/compile-cache.js'

test('the compile cache is used only in a folder that nobody but root can write, all the way from /', (t) => {
  assert.equal(compileCacheDir.startsWith('/var/cache/'), true)
  assert.equal(onlyRootWrites('/'), true)
  assert.equal(onlyRootWrites('/usr'), true, '/usr: root-owned, 0755')
  // /tmp itself is world-writable (1777): another user could have made or replaced anything in it.
  const dir = mkdtempSync(join(tmpdir(), 'ha-compile-cache-'))
  t.after(() => rmSync(dir, {force: true, recursive: true}))
  assert.equal(onlyRootWrites(dir), false, 'under /tmp')
})

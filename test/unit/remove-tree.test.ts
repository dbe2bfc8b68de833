import assert from 'node:assert/strict'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {removeTree} from '../../src/fs/remove-tree.js'

/** What restore uses to remove its staging directory: everything in it goes, nothing it links to. */
test('removeTree removes a nested tree and its links, never what a link points to', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'ha-remove-tree-'))
  t.after(() => rmSync(base, {force: true, recursive: true}))
  const outside = join(base, 'outside')
  mkdirSync(join(outside, 'keep'), {recursive: true})
  writeFileSync(join(outside, 'keep', 'file'), 'kept')
  const tree = join(base, 'tree')
  for (let d = 0; d < 5; d++) {
    mkdirSync(join(tree, `d${d}`, 'deeper', 'still'), {recursive: true})
    for (let f = 0; f < 100; f++) writeFileSync(join(tree, `d${d}`, f % 2 ? 'deeper' : '.', `f${f}`), 'x')
    writeFileSync(join(tree, `d${d}`, 'deeper', 'still', 'last'), 'x')
  }

  symlinkSync(outside, join(tree, 'd0', 'link-to-dir'))
  symlinkSync(join(outside, 'keep', 'file'), join(tree, 'd1', 'deeper', 'link-to-file'))
  symlinkSync(join(base, 'nothing'), join(tree, 'dangling'))
  await removeTree(tree)
  assert.equal(existsSync(tree), false)
  assert.deepEqual(readdirSync(base), ['outside'])
  assert.deepEqual(readdirSync(join(outside, 'keep')), ['file'])
})

test('removeTree: a missing path is no error, a file or a link alone is removed', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'ha-remove-tree-'))
  t.after(() => rmSync(base, {force: true, recursive: true}))
  await removeTree(join(base, 'missing'))
  writeFileSync(join(base, 'file'), 'x')
  mkdirSync(join(base, 'dir'))
  symlinkSync(join(base, 'dir'), join(base, 'link'))
  await removeTree(join(base, 'file'))
  await removeTree(join(base, 'link'))
  assert.deepEqual(readdirSync(base), ['dir'])
})

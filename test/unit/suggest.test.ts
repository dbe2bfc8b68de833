import assert from 'node:assert/strict'
import {test} from 'node:test'

import {closestCommand, editDistance} from '../../src/cli/suggest.js'

const commands = ['backup', 'backup list', 'backup verify', 'check', 'config check', 'restore', 'lab up', 'lab down', 'help']

test('a typo suggests the closest command: a dropped, doubled or swapped letter, or a unique prefix', () => {
  assert.equal(closestCommand('bakup', commands), 'backup')
  assert.equal(closestCommand('restor', commands), 'restore')
  assert.equal(closestCommand('chekc', commands), 'check')
  assert.equal(closestCommand('backup lsit', commands), 'backup list')
  assert.equal(closestCommand('res', commands), 'restore')
  assert.equal(closestCommand('config chek', commands), 'config check')
})

test('nothing is suggested for a word that resembles no command', () => {
  assert.equal(closestCommand('xyzzy', commands), undefined)
  assert.equal(closestCommand('failover', commands), undefined)
  assert.equal(closestCommand('b', commands), undefined)
})

test('edit distance counts a transposition as one edit', () => {
  assert.equal(editDistance('check', 'chekc'), 1)
  assert.equal(editDistance('', 'abc'), 3)
  assert.equal(editDistance('kitten', 'sitting'), 3)
})

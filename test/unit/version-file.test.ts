import assert from 'node:assert/strict'
import {test} from 'node:test'

import {parseProperties} from '../../src/version-file.js'

test('reads the seed example version file', () => {
  const text = [
    '#Note: This file is created at build time.',
    '#Mon Jan 26 08:49:53 PST 2009',
    'version=GA',
    'product.version.xvmopscenter=2.0.0',
    'date=2009/01/26 08\\:49',
    'product.version.xvmserver=1.0.0',
    'build.variation=xvmopscenter',
    'product.version=2.0.0.820',
    '#',
  ].join('\n')
  const p = parseProperties(text)
  assert.equal(p.get('product.version'), '2.0.0.820')
  assert.equal(p.get('date'), '2009/01/26 08:49')
})

test('odd but legal syntax reads as java.util.Properties does', () => {
  const p = parseProperties(
    [
      '! a bang comment',
      '   product.version   :   2.1.\\',
      '        0.1234',
      'key\\ with\\ spaces = v',
      'colon\\:key=x',
      'tabbed\tvalue',
      'empty=',
      'unicode=caf\\u00e9',
      'trailing=ends with backslash \\\\',
      'novalue',
    ].join('\r\n'),
  )
  assert.equal(p.get('product.version'), '2.1.0.1234')
  assert.equal(p.get('key with spaces'), 'v')
  assert.equal(p.get('colon:key'), 'x')
  assert.equal(p.get('tabbed'), 'value')
  assert.equal(p.get('empty'), '')
  assert.equal(p.get('unicode'), 'café')
  assert.equal(p.get('trailing'), 'ends with backslash \\')
  assert.equal(p.get('novalue'), '')
})

test('a later duplicate wins, as in Java', () => {
  assert.equal(parseProperties('product.version=1\nproduct.version=2\n').get('product.version'), '2')
})

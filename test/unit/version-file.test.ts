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

// Each case reads as java.util.Properties.load() reads it.
test('separators: =, :, whitespace, and whitespace around them', () => {
  const p = parseProperties('a=1\nb:2\nc 3\nd\t=\t4\ne   :   5\nf=\ng\n')
  assert.deepEqual([...p], [['a', '1'], ['b', '2'], ['c', '3'], ['d', '4'], ['e', '5'], ['f', ''], ['g', '']])
})

test('comments with # and !, only at the start of a line', () => {
  const p = parseProperties('# x=1\n  ! y=2\nz=a#b!c\n')
  assert.deepEqual([...p], [['z', 'a#b!c']])
})

test('continuation lines drop the next line\'s leading blanks; an even run of backslashes does not continue', () => {
  const p = parseProperties('v=2.1.\\\n     0.1234\nw=ends\\\\\nx=1\n')
  assert.equal(p.get('v'), '2.1.0.1234')
  assert.equal(p.get('w'), 'ends\\')
  assert.equal(p.get('x'), '1')
})

test('a continuation at end of file, and CRLF or CR line ends', () => {
  assert.equal(parseProperties('v=a\\').get('v'), 'a')
  assert.equal(parseProperties('v=a\\\r\n  b\r\nw=c\r').get('v'), 'ab')
  assert.equal(parseProperties('v=a\rw=c').get('w'), 'c')
})

test('escapes: \\t \\n \\uXXXX, an escaped separator in the key, unknown escapes drop the backslash', () => {
  const p = parseProperties('product\\ version=1\nkey\\:x=2\nu=\\u0032.\\u0031\nt=a\\tb\\nc\nq=\\q\\=\n')
  assert.equal(p.get('product version'), '1')
  assert.equal(p.get('key:x'), '2')
  assert.equal(p.get('u'), '2.1')
  assert.equal(p.get('t'), 'a\tb\nc')
  assert.equal(p.get('q'), 'q=')
})

test('the last definition of a key wins, as in Java', () => {
  assert.equal(parseProperties('product.version=1\nproduct.version=2\n').get('product.version'), '2')
})

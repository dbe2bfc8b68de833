import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {readProductVersion} from '../../src/facts/host-facts.js'

import {parseProperties as parseBytes, PropertiesSyntaxError, readVersionProperty} from '../../src/facts/version-file.js'

// Test texts are written as one character per byte (ISO-8859-1), as Java reads the file.
const parseProperties = (text: string) => parseBytes(Buffer.from(text, 'latin1'))

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

test('bytes are ISO-8859-1: 0xE9 is one character, UTF-8 "é" two, and they differ', () => {
  const latin = parseBytes(Buffer.from([...Buffer.from('product.version=2.1-caf'), 0xe9]))
  const utf8 = parseBytes(Buffer.from('product.version=2.1-café', 'utf8'))
  assert.equal(latin.get('product.version'), '2.1-café')
  assert.equal(utf8.get('product.version'), '2.1-caf\u00c3\u00a9')
  assert.notEqual(latin.get('product.version'), utf8.get('product.version'))
  // Two different invalid-UTF-8 bytes must not read as the same version.
  assert.notEqual(parseBytes(Buffer.from([0x76, 0x3d, 0xff])).get('v'), parseBytes(Buffer.from([0x76, 0x3d, 0xfe])).get('v'))
})

test('a malformed \\uXXXX anywhere makes the whole file unreadable, naming its line', () => {
  for (const [text, line] of [
    ['product.version=2.1\nbad=\\uZZZZ\n', 2],
    ['a=1\r\nb=2\r\nc=\\u12\r\n', 3],
    ['a=1\rb=x\\\r  y\\u00g1\rproduct.version=1', 3],
    ['k\\u=v', 1],
  ] as const) {
    assert.throws(() => parseProperties(text), (error: unknown) => error instanceof PropertiesSyntaxError && error.line === line, JSON.stringify(text))
  }

  const reading = readVersionProperty(Buffer.from('product.version=2.1\nx=\\uZZZZ\n'), 'product.version', '/n1gc-setup/.version.properties')
  assert.equal(reading.version, undefined)
  assert.match(reading.error!, /\/n1gc-setup\/\.version\.properties is unreadable.*line 2/)
  assert.match(reading.actions!.join(' '), /line 2 of \/n1gc-setup\/\.version\.properties/)
})

test('a line that is only a backslash continues into nothing: a # line after it is a comment', () => {
  assert.deepEqual([...parseProperties('\\\n#product.version=9\nproduct.version=1\n')], [['product.version', '1']])
  // After a continuation that already holds characters, the # line is part of the value.
  assert.equal(parseProperties('v=a\\\n #b\n').get('v'), 'a#b')
  // A continuation into an empty line ends the logical line there.
  assert.deepEqual([...parseProperties('v=a\\\n\nw=b')], [['v', 'a'], ['w', 'b']])
})

test('readVersionProperty: a missing or empty key is no version, with the fix', () => {
  assert.deepEqual(readVersionProperty(Buffer.from('product.version = 2.1\n'), 'product.version', 'f'), {version: '2.1'})
  assert.match(readVersionProperty(Buffer.from('x=1\n'), 'product.version', 'f').error!, /no "product.version"/)
  assert.match(readVersionProperty(Buffer.from('product.version=\n'), 'product.version', 'f').error!, /empty/)
})

test('the local path (backup, restore) reads the file as bytes too: 0xE9 is "é", a bad escape is refused with its line', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ha-version-'))
  try {
    mkdirSync(join(root, 'n1gc-setup'))
    const file = join(root, 'n1gc-setup/.version.properties')
    writeFileSync(file, Buffer.from([...Buffer.from('product.version=2.1-caf'), 0xe9, 0x0a]))
    assert.equal(await readProductVersion(root, '/n1gc-setup/.version.properties', 'product.version'), '2.1-café')
    writeFileSync(file, 'product.version=2.1\n\nx=\\u00G0\n')
    await assert.rejects(readProductVersion(root, '/n1gc-setup/.version.properties', 'product.version'), /unreadable as Java reads it: line 3/)
  } finally {
    rmSync(root, {force: true, recursive: true})
  }
})

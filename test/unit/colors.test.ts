import assert from 'node:assert/strict'
import {test} from 'node:test'

import {colors} from '../../src/core/colors.js'

const esc = (code: number) => `\u001B[${code}m`

test('each style wraps the text in its 16-colour open and close codes; off, the text is left as it is', () => {
  const on = colors(true)
  assert.equal(on.green('ok'), `${esc(32)}ok${esc(39)}`)
  assert.equal(on.red('FAILED'), `${esc(31)}FAILED${esc(39)}`)
  assert.equal(on.yellow('warning:'), `${esc(33)}warning:${esc(39)}`)
  assert.equal(on.cyan('dry run'), `${esc(36)}dry run${esc(39)}`)
  assert.equal(on.dim('→'), `${esc(2)}→${esc(22)}`)
  assert.equal(on.bold('b'), `${esc(1)}b${esc(22)}`)
  assert.equal(on.red(on.bold('FAIL')), `${esc(31)}${esc(1)}FAIL${esc(22)}${esc(39)}`)
  assert.equal(on.green(''), '')
  const off = colors(false)
  for (const paint of Object.values(off)) assert.equal(paint('a\nb'), 'a\nb')
})

test('a nested style closing does not end the outer one, and no colour bleeds across a line break', () => {
  const {dim, green, red} = colors(true)
  assert.equal(green(`a ${red('b')} c`), `${esc(32)}a ${esc(31)}b${esc(39)}${esc(32)} c${esc(39)}`)
  assert.equal(dim('one\ntwo'), `${esc(2)}one${esc(22)}\n${esc(2)}two${esc(22)}`)
  assert.equal(dim('one\r\ntwo'), `${esc(2)}one${esc(22)}\r\n${esc(2)}two${esc(22)}`)
})

import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {test} from 'node:test'

import {colors, loadColors} from '../../src/core/colors.js'

const esc = (code: number) => `\u001B[${code}m`

// The tests run in this order: the first before chalk is loaded, the rest after.
test('before chalk is loaded (a run that does not colour never loads it), every style leaves the text as it is', () => {
  for (const paint of Object.values(colors(true))) assert.equal(paint('a\nb'), 'a\nb')
})

test("each style wraps the text in chalk's 16-colour open and close codes; off, the text is left as it is", async () => {
  await loadColors()
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

test('a nested style closing does not end the outer one, and no colour bleeds across a line break', async () => {
  await loadColors()
  const {dim, green, red} = colors(true)
  assert.equal(green(`a ${red('b')} c`), `${esc(32)}a ${esc(31)}b${esc(39)}${esc(32)} c${esc(39)}`)
  assert.equal(dim('one\ntwo'), `${esc(2)}one${esc(22)}\n${esc(2)}two${esc(22)}`)
  assert.equal(dim('one\r\ntwo'), `${esc(2)}one${esc(22)}\r\n${esc(2)}two${esc(22)}`)
})

test("the level is ha's, not chalk's own detection: FORCE_COLOR=0 or 3 changes no byte", () => {
  const colors = new URL('../../src/core/colors.ts', import.meta.url).href
  const script = `const c = await import(${JSON.stringify(colors)}); await c.loadColors(); process.stdout.write(c.colors(true).green('ok'))`
  for (const force of ['0', '3']) {
    const env = {...process.env, FORCE_COLOR: force}
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {encoding: 'utf8', env})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, `${esc(32)}ok${esc(39)}`, `FORCE_COLOR=${force}`)
  }
})

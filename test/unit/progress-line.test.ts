import assert from 'node:assert/strict'
import {test} from 'node:test'

import {Reporter} from '../../src/cli/output/reporter.js'
import {bytesOf, countOf, progressAllowed, ProgressLine} from '../../src/cli/output/progress.js'

/** A stream that records what a terminal would receive; the clock is the test's. */
function fakeTerminal(columns = 80) {
  const writes: string[] = []
  return {columns, isTTY: true, text: () => writes.join(''), write: (s: string) => writes.push(s), writes}
}

test('redraws at most every 100 ms: updates in between are kept and drawn by the next one after', () => {
  const term = fakeTerminal()
  let now = 1000
  const line = new ProgressLine(term, 100, () => now)
  line.update('a 1')
  line.update('a 2')
  now += 50
  line.update('a 3')
  assert.deepEqual(term.writes, ['\ra 1\u001B[K'])
  now += 50
  line.update('a 4')
  assert.deepEqual(term.writes, ['\ra 1\u001B[K', '\ra 4\u001B[K'])
})

test('clear erases the line once and lets the next update draw at once; an unchanged text is not redrawn', () => {
  const term = fakeTerminal()
  let now = 0
  const line = new ProgressLine(term, 100, () => now)
  line.update('x')
  now += 500
  line.update('x')
  assert.equal(term.writes.length, 1)
  line.clear()
  line.clear()
  assert.deepEqual(term.writes.slice(1), ['\r\u001B[K'])
  line.update('y')
  assert.equal(term.writes.at(-1), '\ry\u001B[K')
  line.done()
  assert.equal(term.writes.at(-1), '\r\u001B[K')
})

test('a line never reaches the last column (it would wrap) and carries no control character from a file name', () => {
  const term = fakeTerminal(30)
  const line = new ProgressLine(term, 100, () => 0)
  line.update(`extracting ${'x'.repeat(50)}\n\u001B[2Jevil`)
  const drawn = term.writes[0].slice(1, -'\u001B[K'.length)
  assert.equal([...drawn].length, 29)
  assert.ok(drawn.endsWith('…'))
  assert.doesNotMatch(drawn, /[\u0000-\u001F]/)
})

test('allowed only on a terminal whose TERM is set and not dumb', () => {
  assert.equal(progressAllowed({isTTY: true, write() {}}, {TERM: 'xterm'}), true)
  assert.equal(progressAllowed({isTTY: true, write() {}}, {TERM: 'dumb'}), false)
  assert.equal(progressAllowed({isTTY: true, write() {}}, {}), false)
  assert.equal(progressAllowed({isTTY: false, write() {}}, {TERM: 'xterm'}), false)
})

test('the Reporter erases the progress line before each of its own lines, and draws none under --json or --quiet', () => {
  const err = fakeTerminal()
  const out = fakeTerminal()
  const reporter = new Reporter({env: {NO_COLOR: '1', TERM: 'xterm'}, stderr: err as never, stdout: out as never})
  reporter.progress().update('writing the archive: 1 of 2 MiB')
  reporter.info('verifying the new archive')
  assert.equal(err.text(), '\rwriting the archive: 1 of 2 MiB\u001B[K\r\u001B[Kverifying the new archive\n')
  for (const options of [{json: true}, {quiet: true}]) {
    const quietErr = fakeTerminal()
    const r = new Reporter({...options, env: {TERM: 'xterm'}, stderr: quietErr as never, stdout: fakeTerminal() as never})
    assert.equal(r.progress().enabled, false)
    r.progress().update('x')
    assert.equal(quietErr.text(), '')
  }
})

test('counts read in the total\'s unit, capped at the total', () => {
  assert.equal(bytesOf(512 * 1024 ** 2, 2 * 1024 ** 3), '0.50 of 2.00 GiB (25%)')
  assert.equal(bytesOf(3 * 1024 ** 2, 40 * 1024 ** 2), '3.0 of 40.0 MiB (7%)')
  assert.equal(bytesOf(900, 800), '800 of 800 B (100%)')
  assert.equal(countOf(1234, 5000, 'entries'), '1,234 of 5,000 entries (24%)')
})

import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {PassThrough} from 'node:stream'
import {test} from 'node:test'

import {ExitCode, exitCodeMeaning, HaError} from '../../src/core/errors.js'
import {colorAllowed, colorWanted, Reporter} from '../../src/cli/output/reporter.js'
import {loadColors} from '../../src/core/colors.js'
import {repoRoot} from '../helpers/cli.js'

function streams(tty: boolean) {
  const capture = () => {
    const s = Object.assign(new PassThrough(), {isTTY: tty})
    let text = ''
    s.on('data', (d) => (text += d))
    return {s, text: () => text}
  }

  return {err: capture(), out: capture()}
}

test('colour only on a terminal, and never under NO_COLOR or TERM=dumb', async () => {
  assert.equal(colorAllowed({NO_COLOR: '1'}), false)
  assert.equal(colorAllowed({TERM: 'dumb'}), false)
  assert.equal(colorAllowed({}), true)
  // What cli/entry.ts asks at start: only a run that colours loads chalk.
  const both = (tty: boolean) => ({stderr: streams(tty).err.s, stdout: streams(tty).out.s})
  assert.equal(colorWanted({...both(true), env: {}}), true)
  assert.equal(colorWanted({...both(true), env: {NO_COLOR: '1'}}), false)
  assert.equal(colorWanted({...both(true), env: {NO_COLOR: ''}}), true, 'an empty NO_COLOR is unset')
  assert.equal(colorWanted({...both(true), env: {TERM: 'dumb'}}), false)
  assert.equal(colorWanted({...both(true), color: false, env: {}}), false, '--no-color')
  assert.equal(colorWanted({...both(true), env: {}, json: true}), false)
  assert.equal(colorWanted({...both(true), env: {}, quiet: true}), false)
  assert.equal(colorWanted({...both(false), env: {}}), false, 'a pipe (cron)')
  assert.equal(colorWanted({env: {}, stderr: streams(false).err.s, stdout: streams(true).out.s}), false, 'stderr to a file')
  await loadColors()
  const tty = streams(true)
  new Reporter({color: true, stderr: tty.err.s, stdout: tty.out.s}).error(new HaError('boom'))
  assert.match(tty.err.text(), /\u001B\[/)
  const noColor = streams(true)
  new Reporter({color: colorAllowed({NO_COLOR: '1'}), stderr: noColor.err.s, stdout: noColor.out.s}).error(new HaError('boom'))
  assert.equal(noColor.err.text(), 'error: boom\n')
  const pipe = streams(false)
  new Reporter({color: true, stderr: pipe.err.s, stdout: pipe.out.s}).error(new HaError('boom'))
  assert.equal(pipe.err.text(), 'error: boom\n')
})

test('--json is one envelope on stdout, results and errors alike; progress stays off stdout', () => {
  const s = streams(false)
  const r = new Reporter({json: true, stderr: s.err.s, stdout: s.out.s})
  r.info('working')
  r.warn('careful')
  r.result({a: 1}, ExitCode.ok, () => 'human')
  assert.deepEqual(JSON.parse(s.out.text()), {result: {a: 1}, schema_version: 1, status: 0, warnings: ['careful']})
  assert.equal(s.err.text(), '')
  const e = streams(false)
  new Reporter({json: true, stderr: e.err.s, stdout: e.out.s}).error(new HaError('no', {actions: ['do this'], exitCode: ExitCode.locked}))
  assert.deepEqual(JSON.parse(e.out.text()), {error: {actions: ['do this'], message: 'no', name: 'HaError'}, schema_version: 1, status: 11, warnings: []})
})

test('--quiet: nothing on success, one line on stderr otherwise', () => {
  const ok = streams(false)
  const q = new Reporter({quiet: true, stderr: ok.err.s, stdout: ok.out.s})
  q.info('x')
  q.warn('y')
  q.result({}, ExitCode.ok, () => 'done')
  assert.equal(ok.out.text() + ok.err.text(), '')
  const bad = streams(false)
  new Reporter({quiet: true, stderr: bad.err.s, stdout: bad.out.s}).error(new HaError('line one\nline two', {actions: ['fix it']}))
  assert.equal(bad.err.text(), 'ha: line one (fix it)\n')
})

test('the exit-code table in docs/exit-codes.md is the one the code uses, and the README points to it', () => {
  const page = readFileSync(join(repoRoot, 'docs/exit-codes.md'), 'utf8')
  const rows = [...page.matchAll(/^\| (\d+) \| (.+) \|$/gm)].map((m) => [Number(m[1]), m[2]])
  assert.deepEqual(rows, Object.entries(exitCodeMeaning).map(([code, meaning]) => [Number(code), meaning]))
  // No second copy to drift: the README links to the page instead of carrying a table.
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')
  assert.match(readme, /\]\(docs\/exit-codes\.md\)/)
  assert.deepEqual([...readme.matchAll(/^\| (\d+) \| (.+) \|$/gm)], [], 'README.md carries no exit-code table of its own')
  assert.deepEqual(Object.keys(exitCodeMeaning).map(Number).sort((a, b) => a - b), Object.values(ExitCode).sort((a, b) => a - b))
})

import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {haRun, repoRoot} from '../helpers/cli.js'

/**
 * ha answers its help pages without loading oclif (cli/help-pages.ts, from the pages the build
 * wrote with oclif's help class). Every page, asked every plain way, must be byte for byte what
 * oclif prints: stdout, stderr and the exit code. OCLIF_COLUMNS=80 (oclif's width without a
 * terminal) is a run ha leaves to oclif, so it is oclif's own answer beside ha's.
 */

interface Run {
  status: null | number
  stderr: string
  stdout: string
}

const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> => haRun(args, env)

const oclif = (args: string[]) => run(args, {OCLIF_COLUMNS: '80'})

/** Every command and topic, from the manifest and package.json (not from the pages file). */
function subjects(): string[] {
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
  const pjson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {oclif: {topics: Record<string, unknown>}}
  const ids = new Set(Object.keys(pjson.oclif.topics))
  for (const id of Object.keys(manifest.commands)) {
    const parts = id.split(':')
    for (let n = 1; n <= parts.length; n++) ids.add(parts.slice(0, n).join(':'))
  }

  return [...ids].filter((id) => id !== 'help').sort()
}

test('the build holds a page for every command and topic (hidden ones too), and the root page', () => {
  const pages = JSON.parse(readFileSync(join(repoRoot, 'dist/cli/help-pages.json'), 'utf8')) as {pages: Record<string, unknown>}
  assert.deepEqual(Object.keys(pages.pages).sort(), ['', ...subjects()])
  assert.ok(subjects().includes('cluster:agent'), 'the hidden agent command has its page')
})

/** One subject, every plain way of asking: the page, and the --json envelope. */
async function sameAsOclif(words: string[]): Promise<void> {
  const [page, json] = await Promise.all([oclif([...words, '--help']), oclif(['help', ...words, '--json'])])
  assert.equal(page.status, 0, `oclif: ha ${words.join(' ')} --help: ${page.stderr}`)
  assert.match(page.stdout, /USAGE/)
  const asked: Array<[string[], Run]> = [
    [[...words, '--help'], page],
    [[...words, '-h'], page],
    [['help', ...words], page],
    [['help', ...words, '--json'], json],
    [[...words, '--help', '--json'], json],
  ]
  const answers = await Promise.all(asked.map(([args]) => run(args)))
  for (const [i, [args, expected]] of asked.entries()) assert.deepEqual(answers[i], expected, `ha ${args.join(' ')}`)
}

test('the root page: ha, ha help, ha --help, -h, --json: what oclif prints', async () => {
  await sameAsOclif([])
  assert.deepEqual(await run([]), await oclif([]))
})

test("every command's and topic's page, asked every way: what oclif prints", async () => {
  const all = subjects()
  // Two at a time: one per core of a small machine.
  for (let i = 0; i < all.length; i += 2) await Promise.all(all.slice(i, i + 2).map((id) => sameAsOclif(id.split(':'))))
})

test('what the pages do not hold is oclif\'s answer: an unknown subject, a flag of help, help help', async () => {
  for (const args of [['help', 'nosuch'], ['nosuch', '--help'], ['help', 'nosuch', '--json'], ['help', '-n'], ['help', 'help'], ['help', '--help'], ['backup', 'nosuch', '--help']]) {
    assert.deepEqual(await run(args), await oclif(args), `ha ${args.join(' ')}`)
  }

  const unknown = await run(['help', 'nosuch'])
  assert.equal(unknown.status, 2, 'help for a command that does not exist is a usage error')
})

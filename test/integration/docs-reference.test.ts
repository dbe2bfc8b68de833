import assert from 'node:assert/strict'
import {existsSync, readFileSync} from 'node:fs'
import {dirname, join, normalize} from 'node:path'
import {test} from 'node:test'

// @ts-expect-error: a plain .mjs script, no types
import {blockIds, commandReference, docPages, fillReference, GLOBAL_FLAGS} from '../../scripts/reference.mjs'
import {repoRoot} from '../helpers/cli.js'

// The docs pages carry the command reference the man page is built from (oclif.manifest.json,
// through scripts/reference.mjs): a page whose block differs from the commands, a command with no
// page, or a man page that does not send the reader to it fails here.
type Page = {file: string; ids: string[]; text: string; title: string}
const ref = commandReference(repoRoot)
const pages: Page[] = docPages(repoRoot)
const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')

test('every reference block in the docs is what the commands say (npm run build && node scripts/reference.mjs)', () => {
  for (const page of pages) assert.equal(page.text, fillReference(page.text, ref), `${page.file} is stale: npm run build && node scripts/reference.mjs`)
  assert.deepEqual(blockIds(readme), [], 'the README is the entrance: the reference lives in docs/')
})

test('every command, and the global flags, has exactly one reference block in docs/', () => {
  const ids = pages.flatMap((p) => p.ids).sort()
  const expected = [...ref.commands.map((c: {id: string}) => c.id), GLOBAL_FLAGS].sort()
  assert.deepEqual(ids, expected)
  assert.ok(ref.commands.length > 20, 'the manifest lists the commands')
})

test('man ha names the docs page of each command and lists every page', () => {
  // The roff source, unescaped enough to read: \- is -, font changes dropped.
  const man = readFileSync(join(repoRoot, 'man/ha.1'), 'utf8').replaceAll('\\-', '-').replaceAll(/\\f[BIR]/g, '')
  const sections = man.split(/^\.SS /m).slice(1)
  for (const c of ref.commands as Array<{id: string}>) {
    const section = sections.find((s) => s.startsWith(`"ha ${c.id}"\n`))
    assert.ok(section, `man ha has ha ${c.id}`)
    const page = pages.find((p) => p.ids.includes(c.id))!
    assert.ok(section.includes(`More: ${page.file} `), `man ha sends ha ${c.id} to ${page.file}`)
  }

  const seeAlso = man.slice(man.indexOf('.SH SEE ALSO'))
  for (const page of pages) assert.ok(seeAlso.includes(`.I ${page.file}\n${page.title}\n`), `SEE ALSO lists ${page.file}`)
})

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
const slug = (heading: string) => heading.toLowerCase().replaceAll(/[^\p{L}\p{N} _-]/gu, '').replaceAll(' ', '-')
const anchors = (text: string) => {
  const out = new Set<string>()
  let fenced = false
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const m = !fenced && line.match(/^#{1,6} (.+)$/)
    if (m) out.add(slug(m[1]))
  }

  return out
}

test('the README links every docs page, and every link between them reaches a file and heading that exist', () => {
  for (const page of pages) assert.ok(readme.includes(`](${page.file})`), `README.md links ${page.file}`)
  for (const file of ['README.md', ...pages.map((p) => p.file)]) {
    const text = readFileSync(join(repoRoot, file), 'utf8').replaceAll(/^```[\s\S]*?^```$/gm, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue
      const [path, anchor] = target.split('#')
      const to = path ? normalize(join(dirname(file), path)) : file
      assert.ok(existsSync(join(repoRoot, to)), `${file} links ${target}: ${to} does not exist`)
      if (anchor) assert.ok(anchors(readFileSync(join(repoRoot, to), 'utf8')).has(anchor), `${file} links ${target}: no such heading in ${to}`)
    }
  }
})

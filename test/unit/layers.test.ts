import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {dirname, join, relative, resolve} from 'node:path'
import {test} from 'node:test'
import {fileURLToPath} from 'node:url'

import ts from 'typescript'

/**
 * The layering written in docs/architecture.md, held: every import in src/ (static, dynamic and
 * type-only: a type import still ties two files together for a reader) goes to the same folder
 * or to a folder on a lower level; no file imports itself back through others; no folder is
 * left out of the table; no file sits loose at src/'s top; ssh2 only in hosts/.
 */
const top = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const src = join(top, 'src')

type Graph = Map<string, string[]>

function levelsFromDoc(): Map<string, number> {
  const doc = readFileSync(join(top, 'docs/architecture.md'), 'utf8')
  const table = /<!-- layers[^>]*-->([\s\S]*?)<!-- \/layers -->/.exec(doc)
  assert.ok(table, 'docs/architecture.md has no <!-- layers --> table')
  const levels = new Map<string, number>()
  for (const row of table[1].split('\n')) {
    const cells = row.split('|').map((c) => c.trim())
    if (!/^\d+$/.test(cells[1] ?? '')) continue
    for (const folder of cells[2].split(',').map((f) => f.trim())) {
      assert.ok(!levels.has(folder), `docs/architecture.md places ${folder} twice`)
      levels.set(folder, Number(cells[1]))
    }
  }

  return levels
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : []
  })
}

/** Relative imports resolved to files (src/…/x.ts), and package imports by name. */
function importsOf(file: string): {files: string[]; packages: string[]} {
  const {importedFiles} = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
  const files: string[] = []
  const packages: string[] = []
  for (const {fileName} of importedFiles) {
    if (!fileName.startsWith('.')) {
      packages.push(fileName)
      continue
    }

    const target = resolve(dirname(file), fileName).replace(/\.js$/, '.ts')
    assert.ok(existsSync(target), `${relative(top, file)} imports ${fileName}, which is not a file in src/`)
    files.push(target)
  }

  return {files, packages}
}

/** Each strongly connected group of more than one file (or a file importing itself): the circles. */
export function circles(graph: Graph): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  let next = 0
  const visit = (v: string) => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }

    if (low.get(v) === index.get(v)) {
      const group: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        group.push(w)
      } while (w !== v)
      if (group.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(group.sort())
    }
  }

  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

/** Imports that do not go down: "from -> to (folder level -> folder level)". */
export function upward(graph: Graph, folderOf: (file: string) => string, levels: Map<string, number>): string[] {
  const wrong: string[] = []
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const [a, b] = [folderOf(from), folderOf(to)]
      if (a === b) continue
      const [la, lb] = [levels.get(a), levels.get(b)]
      if (la === undefined || lb === undefined || la <= lb) wrong.push(`${from} -> ${to} (${a} ${la} -> ${b} ${lb})`)
    }
  }

  return wrong
}

const folderOf = (file: string) => file.split('/')[0]

function srcGraph(): {graph: Graph; packages: Map<string, string[]>} {
  const graph: Graph = new Map()
  const packages = new Map<string, string[]>()
  for (const file of sourceFiles(src)) {
    const imports = importsOf(file)
    graph.set(relative(src, file), imports.files.map((f) => relative(src, f)))
    packages.set(relative(src, file), imports.packages)
  }

  return {graph, packages}
}

test('the checks themselves find a circle and an upward import in a made-up graph', () => {
  const graph: Graph = new Map([
    ['a/x.ts', ['b/y.ts']],
    ['b/y.ts', ['c/z.ts']],
    ['c/z.ts', ['b/y.ts']],
  ])
  assert.deepEqual(circles(graph), [['b/y.ts', 'c/z.ts']])
  assert.deepEqual(upward(graph, folderOf, new Map([['a', 3], ['b', 2], ['c', 1]])), ['c/z.ts -> b/y.ts (c 1 -> b 2)'])
  assert.deepEqual(upward(new Map([['a/x.ts', ['d/w.ts']]]), folderOf, new Map([['a', 3], ['d', 3]])), ['a/x.ts -> d/w.ts (a 3 -> d 3)'])
})

test('no file in src/ imports itself back through others', () => {
  assert.deepEqual(circles(srcGraph().graph), [], 'import circles (break each: move the shared part down)')
})

test('every import in src/ goes down the layers docs/architecture.md names', () => {
  const levels = levelsFromDoc()
  const folders = readdirSync(src).filter((name) => statSync(join(src, name)).isDirectory())
  const unplaced = folders.filter((f) => !levels.has(f))
  assert.deepEqual(unplaced, [], 'folders of src/ that docs/architecture.md does not place: add them to its layers table')
  const loose = readdirSync(src).filter((name) => !statSync(join(src, name)).isDirectory())
  assert.deepEqual(loose, [], 'files loose at src/ top level: put each in the folder that says what it is')
  assert.deepEqual(upward(srcGraph().graph, folderOf, levels), [], 'imports against the layering (a lower level, or a sibling on the same level)')
})

test('only the host seam (src/hosts/) talks to ssh2', () => {
  const users = [...srcGraph().packages].filter(([file, pkgs]) => pkgs.includes('ssh2') && folderOf(file) !== 'hosts').map(([file]) => file)
  assert.deepEqual(users, [])
})

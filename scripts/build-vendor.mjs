#!/usr/bin/env node
// The YAML parser and the schema library as one file each in dist/vendor/, and dist/ importing
// them there. Both packages are many small modules (yaml: 73 CommonJS files); a start of ha that
// reads its configuration (ha config check, cron's ha backup, Pacemaker's monitor every few
// seconds) paid Node's per-module cost for each, more than their code costs to compile: on Node
// 20, one file instead of yaml's 73 is about a quarter of a bare node's start less per run
// (docs/performance.md). The code is the packages' own, as installed, untransformed (no target,
// no minifying, names kept); only how it is split into files changes. The sources still import
// 'yaml' and 'zod' (bin/dev.js and the unit tests use the packages as installed). Run by
// `npm run build`, after tsc.
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const vendor = join(dist, 'vendor')
const packages = ['yaml', 'zod']

for (const name of packages) {
  // Every named export of the package as Node gives it to ha's ES modules.
  const exported = Object.keys(await import(name)).filter((key) => key !== 'default')
  await build({
    absWorkingDir: root,
    // A CommonJS package's require() of Node's own modules, inside an ES module.
    banner: {js: "import {createRequire as __haCreateRequire} from 'node:module'; const require = __haCreateRequire(import.meta.url);"},
    bundle: true,
    format: 'esm',
    keepNames: true,
    legalComments: 'inline',
    logLevel: 'warning',
    outfile: join(vendor, `${name}.js`),
    platform: 'node',
    stdin: {contents: `import * as m from '${name}'\nexport const {${exported.join(', ')}} = m\n`, resolveDir: root, sourcefile: `${name}-entry.js`},
  })
}

/** Every .js file under dist/, dist/vendor/ apart. */
function* compiled(dir) {
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory() && path !== vendor) yield* compiled(path)
    else if (entry.isFile() && entry.name.endsWith('.js')) yield path
  }
}

const quoted = packages.join('|')
for (const file of compiled(dist)) {
  const text = readFileSync(file, 'utf8')
  const rewritten = text.replaceAll(new RegExp(`(\\bfrom ')(${quoted})(';)`, 'g'), (_, from, name, end) => {
    const path = relative(dirname(file), join(vendor, `${name}.js`))
    return `${from}${path.startsWith('.') ? path : `./${path}`}${end}`
  })
  // Any other way of loading them (import(), require(), a subpath) would load a second copy.
  const left = new RegExp(`['"](${quoted})(/[^'"]*)?['"]`).exec(rewritten)
  if (left) throw new Error(`${relative(root, file)}: ${left[0]} is loaded in a way this script does not rewrite`)
  if (rewritten !== text) writeFileSync(file, rewritten)
}

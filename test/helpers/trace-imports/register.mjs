// NODE_OPTIONS="--import <this file>" HA_TRACE_IMPORTS=<file>: every module URL the process
// resolves is appended to <file>, so a test can prove what a command did or did not load.
// import and import() go through the resolve hook (hooks.mjs); require() of CommonJS does not
// (@oclif/core and its dependencies load so), so at exit every file in require's cache is
// appended too, as a file: URL.
import {appendFileSync} from 'node:fs'
import {createRequire, register} from 'node:module'
import {pathToFileURL} from 'node:url'

register(new URL('hooks.mjs', import.meta.url))

const cache = createRequire(import.meta.url).cache
process.on('exit', () => {
  if (!process.env.HA_TRACE_IMPORTS) return
  const urls = Object.keys(cache).map((path) => `${pathToFileURL(path).href}\n`)
  appendFileSync(process.env.HA_TRACE_IMPORTS, urls.join(''))
})

#!/usr/bin/env node
// Writes dist/cli/help-pages.json: every help page of ha (the root page, each topic's, each
// command's, hidden ones included) exactly as oclif's help class (dist/cli/help.js) prints it where
// there is no terminal (80 columns), and the commands each page lists for --json. cli/help-pages.ts
// answers `ha help …` and `ha … --help` from it without loading @oclif/core; anything this file
// cannot answer exactly is left to oclif. Run by `npm run build`, after `oclif manifest`, so the
// pages are made from the same build as the commands. test/integration/help-pages.test.ts holds
// every page to what oclif prints at that moment.
import {createRequire} from 'node:module'
import {writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const {Config} = require('@oclif/core/config')
const load = () => Config.load({root, userPlugins: false})
const config = await load()
const {default: HaHelp} = await import(pathToFileURL(join(root, 'dist/cli/help.js')).href)

/** The root page's VERSION line names this node and platform; the page keeps a mark in its place. */
const userAgentMark = '<%= userAgent %>'

/**
 * What one showHelp call wrote on stdout. Each page from a Config of its own, as each run of ha
 * has: oclif rewrites the commands' ids while it formats a page.
 */
async function printed(argv) {
  const chunks = []
  const write = process.stdout.write
  process.stdout.write = (chunk) => {
    chunks.push(String(chunk))
    return true
  }

  try {
    // maxWidth 80: what oclif uses when stdout is no terminal, whatever this build runs in.
    await new HaHelp(await load(), {maxWidth: 80}).showHelp(argv)
  } finally {
    process.stdout.write = write
  }

  return chunks.join('')
}

// A subject with the word help in it is not one to oclif (`ha help help` is the root page): those
// stay oclif's (cli/help-pages.ts never looks them up).
const ids = new Set([...config.commands.map((c) => c.id), ...config.topics.map((t) => t.name)])
const subjects = [null, ...[...ids].filter((id) => !id.split(':').includes('help')).sort()]
const pages = {}
for (const subject of subjects) {
  const words = subject === null ? [] : subject.split(':')
  const page = await printed(words)
  const envelope = JSON.parse(await printed([...words, '--json']))
  const {commands, text} = envelope.result
  // The page on stdout is the --json text and a newline: one string serves both.
  if (page !== `${text}\n` || envelope.status !== 0) throw new Error(`help ${subject}: the page and its --json text differ`)
  const marked = text.split(config.userAgent)
  if (marked.length !== (subject === null ? 2 : 1)) throw new Error(`help ${subject}: the version line is not where it was expected`)
  pages[subject ?? ''] = {commands, text: marked.join(userAgentMark)}
}

writeFileSync(join(root, 'dist/cli/help-pages.json'), `${JSON.stringify({pages, userAgentMark})}\n`)

#!/usr/bin/env node
// Node's compile cache first (Node 22.1+, root only, a folder only root can write: see
// cli/compile-cache.ts), so that everything after it is compiled once, not at every start.
// Signals are handled before anything heavy loads: a SIGTERM during startup still ends in one
// envelope and exit 143 (cli/signals.ts).
import {enableCompileCache} from '../dist/cli/compile-cache.js'

enableCompileCache()
const {stopOnSignalsOutsideCommands} = await import('../dist/cli/signals.js')
stopOnSignalsOutsideCommands(process.argv.slice(2))
const {main} = await import('../dist/cli/entry.js')
await main(process.argv.slice(2), import.meta.url)

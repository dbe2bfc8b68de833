#!/usr/bin/env node
// Signals are handled before anything heavy loads: a SIGTERM during startup still ends in one
// envelope and exit 143 (cli/signals.ts).
import {stopOnSignalsOutsideCommands} from '../dist/cli/signals.js'

stopOnSignalsOutsideCommands(process.argv.slice(2))
const {main} = await import('../dist/cli/entry.js')
await main(process.argv.slice(2), import.meta.url)

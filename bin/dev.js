#!/usr/bin/env -S node --import tsx --no-warnings
// Runs the TypeScript sources directly (no build); for working on ha itself.
import {stopOnSignalsOutsideCommands} from '../src/cli/signals.ts'

stopOnSignalsOutsideCommands(process.argv.slice(2))
const {main} = await import('../src/cli/entry.ts')
await main(process.argv.slice(2), import.meta.url, true)

#!/usr/bin/env node
// Runs the whole suite with Node's own test runner: every test/**/*.test.ts, or the files and
// folders given as arguments. Tests that need root, sshd or namespaces fail (not skip) under CI=true.
import {spawnSync} from 'node:child_process'
import {readdirSync, statSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')
const collect = (path) =>
  statSync(path).isDirectory()
    ? readdirSync(path).sort().flatMap((name) => collect(join(path, name)))
    : path.endsWith('.test.ts') ? [path] : []
const targets = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['test']
const files = targets.flatMap((t) => collect(join(top, t))).map((f) => relative(top, f))
if (files.length === 0) {
  console.error('run-tests: no test files found')
  process.exit(1)
}

const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  {cwd: top, stdio: 'inherit', env: {...process.env, NO_COLOR: process.env.NO_COLOR ?? '1'}},
)
process.exit(r.status ?? 1)

#!/usr/bin/env node
// `npm run demo`: sets up a demo controller under /tmp/ha-demo (a root folder with the state an
// Ops Center-like controller keeps outside its data directory) and runs the main job there:
// ha backup, then ha backup list and ha backup verify.
import {spawnSync} from 'node:child_process'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {controllerConfig, makeControllerRoot} from './controller-root.mjs'

const dir = process.env.HA_DEMO_DIR || '/tmp/ha-demo'
rmSync(dir, {force: true, recursive: true})
mkdirSync(dir, {recursive: true})
const root = join(dir, 'primary')
makeControllerRoot(root)
const config = join(dir, 'ha.yaml')
writeFileSync(config, controllerConfig({primaryRoot: root}))
const ha = (...args) => {
  console.log(`\n$ ha ${args.join(' ')}`)
  const r = spawnSync(process.execPath, ['bin/run.js', ...args, '--config', config, '--node', 'primary'], {stdio: 'inherit'})
  if (r.status !== 0) process.exit(r.status ?? 1)
}

console.log(`demo controller root: ${root}\nconfig: ${config}`)
ha('backup')
ha('backup', 'list')
ha('backup', 'verify', 'latest')

#!/usr/bin/env node
// `npm run demo`: brings the two-controller lab up (as root) and runs the main job there the way
// production does: `ha backup` on the primary over ssh (as its hourly cron would), then
// `ha backup list` and `ha backup verify`, then, from the admin side, `ha check` on the pair.
// The lab stays up for rehearsal; `npm run lab:down` removes it.
// Not root: falls back to a demo controller root under /tmp/ha-demo and runs ha backup there.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {controllerConfig, makeControllerRoot} from './controller-root.mjs'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')
const haBin = join(top, 'bin/run.js')
const show = (argv, label = argv.join(' ')) => {
  console.log(`\n$ ${label}`)
  const r = spawnSync(argv[0], argv.slice(1), {cwd: top, stdio: 'inherit'})
  return r.status ?? 1
}

const must = (argv, label, allowed = [0]) => {
  const status = show(argv, label)
  if (!allowed.includes(status)) {
    console.error(`demo: "${label}" exited ${status}`)
    process.exit(status)
  }
}

if (process.getuid?.() !== 0) {
  const dir = process.env.HA_DEMO_DIR || '/tmp/ha-demo'
  console.log('not root: the lab needs root, so this runs ha backup on a demo controller root instead')
  rmSync(dir, {force: true, recursive: true})
  mkdirSync(dir, {recursive: true})
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({primaryRoot: root}))
  for (const args of [['backup'], ['backup', 'list'], ['backup', 'verify', 'latest']]) {
    must([process.execPath, haBin, ...args, '--config', config, '--node', 'primary'], `ha ${args.join(' ')}`)
  }

  process.exit(0)
}

const labDir = process.env.HA_LAB_DIR || '/var/lib/ha-lab'
const config = join(labDir, 'ha.yaml')
must([process.execPath, haBin, 'lab', 'up'], 'ha lab up')
// ha as installed on the controller itself (its own / and /etc/ha/ha.yaml), reached over ssh.
const onPrimary = (args) => [
  'ip', 'netns', 'exec', 'ha-lab-admin',
  'ssh', '-i', join(labDir, 'admin/id_ed25519'), '-o', `UserKnownHostsFile=${join(labDir, 'admin/known_hosts')}`,
  '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', 'root@198.18.0.2',
  'ha', ...args,
]
must(onPrimary(['backup', '--if-attached']), 'ssh root@ctl-a ha backup --if-attached   # what each node\'s hourly cron runs')
must(onPrimary(['backup', 'list']), 'ssh root@ctl-a ha backup list')
must(onPrimary(['backup', 'verify', 'latest']), 'ssh root@ctl-a ha backup verify latest')
if (existsSync(join(top, 'dist/commands/check.js'))) {
  must(['ip', 'netns', 'exec', 'ha-lab-admin', process.execPath, haBin, 'check', '--config', config], 'ha check                             # from the admin side', [0, 3])
}

console.log(`\nThe lab is still up for rehearsal (ha lab status; docs/lab.md). Remove it with: npm run lab:down`)

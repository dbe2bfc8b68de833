import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {exited, ha, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * The schedule really fires: the real cron daemon, in a mount namespace of its own where
 * /etc/cron.d is the test root's (and /etc/crontab, the user crontabs and /run are empty), reads
 * the file `ha schedule install` wrote and runs it at the next minute; an archive appears. Cron
 * counts in whole minutes, so this test waits up to two of them.
 */
const skip = missingPrerequisite(['root']) ?? (existsSync('/usr/sbin/cron') ? undefined : 'needs cron (apt-get install cron)')

test('cron runs the installed schedule and a verified archive appears', {skip, timeout: 200_000}, async (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  spawnSync('rm', ['-f', join(root, 'etc/cron.d/ha-backup')])
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({primaryRoot: root}))
  // The next whole minute, or the one after when this one is nearly over (installing takes a moment).
  const now = new Date()
  const minute = (now.getMinutes() + (now.getSeconds() < 45 ? 1 : 2)) % 60
  const installed = ha(['schedule', 'install', '--minute', String(minute), '--config', config, '--node', 'primary'])
  assert.equal(installed.status, 0, installed.stderr)

  const empty = join(dir, 'empty')
  mkdirSync(join(empty, 'crontabs'), {recursive: true})
  writeFileSync(join(empty, 'crontab'), '')
  const script = [
    'set -e',
    `mount --bind ${join(root, 'etc/cron.d')} /etc/cron.d`,
    `mount --bind ${join(empty, 'crontab')} /etc/crontab`,
    `mount --bind ${join(empty, 'crontabs')} /var/spool/cron/crontabs`,
    'mount -t tmpfs tmpfs /run',
    'exec /usr/sbin/cron -f -L 15',
  ].join('\n')
  const cron = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {stdio: ['ignore', 'pipe', 'pipe']})
  let log = ''
  cron.stdout.on('data', (d) => (log += d))
  cron.stderr.on('data', (d) => (log += d))
  t.after(async () => {
    cron.kill('SIGTERM')
    await exited(cron)
  })

  const backups = join(root, 'var/opt/sun/xvm/.ha/backups')
  const archives = () => (existsSync(backups) ? readdirSync(backups).filter((n) => n.endsWith('.tar.gz')) : [])
  const deadline = Date.now() + 180_000
  while (archives().length === 0 && Date.now() < deadline && cron.exitCode === null) await sleep(1000)
  assert.equal(archives().length, 1, `cron ran the schedule within three minutes (cron said: ${log})`)
  const list = ha(['backup', 'list', '--json', '--config', config, '--node', 'primary'])
  assert.equal(list.json?.result.backups[0].verified, true)
  assert.equal(new Date(list.json?.result.backups[0].created_at).getMinutes(), minute, 'it ran at the scheduled minute')
})

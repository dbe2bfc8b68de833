import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {ha, haBin, tempDir} from '../helpers/cli.js'

/**
 * `ha schedule` on a controller root in a temp folder (the node's root prefixes /etc/cron.d and
 * /etc/systemd/system, so nothing of this machine is touched). The cron line is then run the way
 * cron runs it, with cron's bare environment, and a real archive must appear.
 */
function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  // The fixture controller carries a hand-written cron file; these tests start without one.
  spawnSync('rm', ['-f', join(root, 'etc/cron.d/ha-backup')])
  mkdirSync(join(root, 'etc/cron.d'), {recursive: true})
  mkdirSync(join(root, 'etc/systemd/system'), {recursive: true})
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({primaryRoot: root}))
  const run = (...args: string[]) => ha(['schedule', ...args, '--config', config, '--node', 'primary'])
  return {config, cronFile: join(root, 'etc/cron.d/ha-backup'), root, run}
}

const cronLine = (text: string) => text.split('\n').find((l) => /^\d/.test(l))!

test('install writes /etc/cron.d/ha-backup with absolute paths; the line, run as cron runs it, makes a real backup', (t) => {
  const {config, cronFile, root, run} = setup(t)
  const r = run('install', '--minute', '17')
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, new RegExp(`created +${cronFile}`))
  const st = statSync(cronFile)
  assert.equal(st.mode & 0o7777, 0o644, 'cron ignores a file in cron.d that group or others can write')
  const line = cronLine(readFileSync(cronFile, 'utf8'))
  assert.equal(line, `17 * * * * root ${process.execPath} ${haBin} backup --quiet --if-attached --config ${config} --node primary`)

  // What cron does with it: /bin/sh -c with cron's short environment (no HA_CONFIG, a bare PATH).
  const command = line.replace(/^(\S+\s+){5}root\s+/, '')
  const fired = spawnSync('/bin/sh', ['-c', command], {encoding: 'utf8', env: {HOME: '/root', LOGNAME: 'root', PATH: '/usr/bin:/bin', SHELL: '/bin/sh'}})
  assert.equal(fired.status, 0, fired.stderr)
  assert.equal(fired.stdout + fired.stderr, '', '--quiet: cron has nothing to mail')
  const archives = readdirSync(join(root, 'var/opt/sun/xvm/.ha/backups')).filter((n) => n.endsWith('.tar.gz'))
  assert.equal(archives.length, 1, 'the scheduled command made an archive')

  const again = run('install', '--minute', '17')
  assert.match(again.stdout, /unchanged/)
  const moved = run('install', '--minute', '45', '--json')
  assert.equal(moved.json?.result.files[0].action, 'replaced')
  assert.match(cronLine(readFileSync(cronFile, 'utf8')), /^45 \* \* \* \* root /)
})

test('show names the file, the command and the next three runs at the scheduled minute; 3 when none is installed', (t) => {
  const {cronFile, run} = setup(t)
  const none = run('show')
  assert.equal(none.status, 3)
  assert.match(none.stdout, /no backup schedule installed/)
  assert.equal(run('install', '--minute', '5').status, 0)
  const before = Date.now()
  const shown = run('show', '--json')
  assert.equal(shown.status, 0)
  const result = shown.json!.result
  assert.equal(result.kind, 'cron')
  assert.deepEqual(result.files, [cronFile])
  assert.equal(result.expression, '05 * * * *')
  const runs = (result.next_runs as string[]).map((s) => new Date(s))
  assert.equal(runs.length, 3)
  assert.ok(runs[0].getTime() > before && runs[0].getTime() <= before + 3600_000, 'the first run is within the hour')
  for (const [i, d] of runs.entries()) {
    assert.equal(d.getMinutes(), 5)
    if (i > 0) assert.equal(d.getTime() - runs[i - 1].getTime(), 3600_000)
  }

  const human = run('show')
  assert.match(human.stdout, /^ {2}next +\d{4}-\d\d-\d\d \d\d:05 [+-]\d\d:\d\d, /m)

  // After an upgrade moved node: the line names a binary that is gone.
  writeFileSync(cronFile, readFileSync(cronFile, 'utf8').replace(process.execPath, '/opt/gone/bin/node'))
  const stale = run('show')
  assert.equal(stale.status, 3)
  assert.match(stale.stdout, /problem: \/opt\/gone\/bin\/node, named in the schedule, does not exist: run ha schedule install again/)
})

test('--systemd writes a timer and a service from the templates; cron and systemd are never both installed', (t) => {
  const {cronFile, root, run} = setup(t)
  const r = run('install', '--systemd', '--minute', '30')
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /not activated: root .* is not this host's \/; systemctl was not run/)
  const timer = readFileSync(join(root, 'etc/systemd/system/ha-backup.timer'), 'utf8')
  const service = readFileSync(join(root, 'etc/systemd/system/ha-backup.service'), 'utf8')
  assert.match(timer, /^OnCalendar=\*-\*-\* \*:30:00$/m)
  assert.match(timer, /^WantedBy=timers\.target$/m)
  assert.match(service, new RegExp(`^ExecStart=${process.execPath} ${haBin} backup --quiet --if-attached --config \\S+ --node primary$`, 'm'))
  assert.match(service, /^Type=oneshot$/m)
  assert.equal(run('show', '--json').json?.result.next_runs.length, 3)

  const both = run('install')
  assert.equal(both.status, 1)
  assert.match(both.stderr, /a systemd timer from ha schedule is already installed; two schedules would run every backup twice/)
  assert.ok(!existsSync(cronFile))

  const removed = run('remove', '--json')
  assert.equal(removed.status, 0)
  assert.equal(removed.json?.result.files.length, 2)
  assert.ok(!existsSync(join(root, 'etc/systemd/system/ha-backup.timer')))
  assert.equal(run('remove').stdout, 'no backup schedule from ha schedule was installed; nothing removed\n')
})

test('a file ha did not write is refused, kept by remove, and replaced only with --force; links are never written through', (t) => {
  const {cronFile, root, run} = setup(t)
  writeFileSync(cronFile, '0 * * * * root /usr/local/bin/old-backup\n')
  const refused = run('install')
  assert.equal(refused.status, 1)
  assert.match(refused.stderr, new RegExp(`${cronFile} exists and was not written by ha schedule; nothing was changed`))
  assert.match(refused.stderr, /ha schedule install --force replaces it/)
  assert.equal(readFileSync(cronFile, 'utf8'), '0 * * * * root /usr/local/bin/old-backup\n')
  const kept = run('remove')
  assert.equal(kept.status, 1)
  assert.ok(existsSync(cronFile))
  assert.equal(run('install', '--force').status, 0)
  assert.match(readFileSync(cronFile, 'utf8'), /Installed by `ha schedule install`/)

  const elsewhere = join(root, 'elsewhere')
  writeFileSync(elsewhere, 'not yours\n')
  spawnSync('rm', [cronFile])
  symlinkSync(elsewhere, cronFile)
  const link = run('install', '--force')
  assert.equal(link.status, 1)
  assert.match(link.stderr, /is a symbolic link; ha does not write through links/)
  assert.equal(readFileSync(elsewhere, 'utf8'), 'not yours\n')
})

test('bad input changes nothing: a minute out of range, no cron on the host', (t) => {
  const {root, run} = setup(t)
  const minute = run('install', '--minute', '60')
  assert.equal(minute.status, 2)
  assert.match(minute.stderr, /^error: --minute: Expected an integer less than or equal to 59 but received: 60$/m)
  assert.match(minute.stderr, /→ ha schedule install --help/)
  spawnSync('rm', ['-r', join(root, 'etc/cron.d')])
  const noCron = run('install')
  assert.equal(noCron.status, 1)
  assert.match(noCron.stderr, /etc\/cron\.d is not there: cron is not installed on this host; nothing was changed/)
  assert.match(noCron.stderr, /install cron \(apt-get install cron\), or use --systemd/)
})

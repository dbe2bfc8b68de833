import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'
import {gunzipSync, gzipSync} from 'node:zlib'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {jsonSchemaVersion} from '../../src/cli/output/reporter.js'
import {ha, type HaRun, repoRoot, tempDir} from '../helpers/cli.js'
import {type Shape, shapeOf} from '../helpers/json-shape.js'
import {backupsOf, makePair, moveStorage} from '../helpers/restore-fixture.js'
import {closedPort, writeLoopbackConfig} from '../helpers/loopback-pair.js'
import {makeKey, startSshd} from '../helpers/sshd.js'

/**
 * Runbooks parse `--json`. The shape of every envelope (keys and value types, not values) is
 * committed in json-contract.snapshot.json, so changing the contract fails here first. An array's
 * shape is the union of its elements' shapes (each distinct shape once, sorted), so a field that
 * is a string in one element and null in another, or an element of another kind, is pinned too;
 * `[]` means no run here produced an element. Every outcome, the failures included, is one
 * envelope carrying `schema_version`. `ha failover`, `ha status` and `ha rejoin` need two nodes:
 * their envelopes are pinned in the lab (test/lab/failover-contract.test.ts), except the offline plan.
 *
 * After an intended change: raise jsonSchemaVersion in src/cli/output/reporter.ts when a field was
 * removed, renamed or changed type (not for an addition), then regenerate on purpose:
 *   UPDATE_SNAPSHOTS=1 npm test -- test/contract
 */
const snapshotFile = join(repoRoot, 'test/contract/json-contract.snapshot.json')

test('an array\'s shape is the union of every element\'s, not the first one\'s', () => {
  assert.deepEqual(shapeOf([{a: 'x'}, {a: null}, {a: 'y'}]), [{a: 'null'}, {a: 'string'}])
  assert.deepEqual(shapeOf([1, 'a', 2]), ['number', 'string'])
  assert.deepEqual(shapeOf([]), [])
})

test('the --json envelopes keep their documented shape', async (t) => {
  const shapes: Record<string, Shape> = {}
  /** One envelope on stdout, with the schema version, and the exit status in it: then its shape. */
  const record = (name: string, r: HaRun, status?: number) => {
    assert.ok(r.json, `${name}: stdout is one JSON document:\n${r.stdout}\n${r.stderr}`)
    if (status !== undefined) assert.equal(r.status, status, `${name}: exit ${r.status}\n${r.stderr}`)
    assert.equal(r.json.status, r.status, `${name}: the envelope's status is the exit code`)
    assert.equal((r.json as {schema_version?: number}).schema_version, jsonSchemaVersion, `${name}: schema_version`)
    assert.equal(r.stderr, '', `${name}: nothing on stderr under --json`)
    shapes[name] = shapeOf(r.json)
  }

  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  makeControllerRoot(join(dir, 'secondary'), {hostname: 'ctl-b', uidBase: 1901})
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({include: ['/etc/opt/site/license.key'], keep: 1, primaryRoot: root, secondaryRoot: join(dir, 'secondary')}))
  const run = (...args: string[]) => ha([...args, '--json', '--config', config, '--node', 'primary'])
  record('backup (partial)', run('backup'), 3)
  record('backup (partial, pruned)', run('backup'), 3)
  record('backup list', run('backup', 'list'), 0)
  record('backup verify', run('backup', 'verify'), 0)
  // Two local nodes (no ssh block): the same checks and envelope as over ssh; its verdict depends
  // on this machine (service IP, storage), its shape does not.
  record('check', ha(['check', '--json', '--config', config]))
  // One byte of a saved file changed inside the archive: verify names it.
  const [archive] = (JSON.parse(run('backup', 'list').stdout).result.backups as Array<{file: string}>).map((b) => b.file)
  const tarball = gunzipSync(readFileSync(archive))
  tarball[tarball.indexOf('controller=ctl-a')] = 'C'.charCodeAt(0)
  writeFileSync(archive, gzipSync(tarball))
  record('backup verify (failed)', run('backup', 'verify'), 1)
  record('config check', ha(['config', 'check', '--json', '--config', config]), 0)
  // ha failover needs the product's services commands: named, before anything runs.
  const noServices = ha(['failover', '--plan', '--from', 'primary', '--json', '--config', config])
  record('error (failover: services not set)', noServices, 2)
  assert.match(noServices.json!.error!.message, new RegExp(`^${config}: services.start, services.stop, services.status not set`))
  // The runbook for one direction, printed without reaching the nodes.
  const withServices = join(dir, 'ha-services.yaml')
  writeFileSync(withServices, `${readFileSync(config, 'utf8')}services: {start: [/etc/init.d/xvm, start], stop: [/etc/init.d/xvm, stop], status: [/etc/init.d/xvm, status]}\n`)
  record('failover --plan --from', ha(['failover', '--plan', '--from', 'primary', '--json', '--config', withServices]), 0)
  // No node answers: the plan from the config, each node named with why (exit 3).
  makeKey(join(dir, 'silent_id'))
  writeFileSync(join(dir, 'known_hosts'), '')
  const silent = writeLoopbackConfig(dir, {primary: {key: join(dir, 'silent_id'), port: closedPort(), root: root}, secondary: {key: join(dir, 'silent_id'), port: closedPort(), root: join(dir, 'secondary')}}, '/dev/ha-test-shared')
  writeFileSync(silent, `${readFileSync(silent, 'utf8')}services: {start: [/etc/init.d/xvm, start], stop: [/etc/init.d/xvm, stop], status: [/etc/init.d/xvm, status]}\n`)
  record('failover --plan (no node checked)', ha(['failover', '--plan', '--json', '--config', silent], {env: {HA_FAILOVER_DIR: join(dir, 'journal')}}), 3)
  // Under Pacemaker: the switchover's plan for one direction; ha check with the cluster's view
  // (no cluster answers here: result.cluster carries the error, one cluster row fails); a refusal.
  const pacemaker = join(dir, 'ha-pacemaker.yaml')
  writeFileSync(pacemaker, `${readFileSync(withServices, 'utf8')}failover: {mode: service}\ncluster: {manager: pacemaker, fencing: [{id: fence-a, agent: fence_ipmilan}]}\n`)
  record('failover --plan --from (pacemaker)', ha(['failover', '--plan', '--from', 'primary', '--json', '--config', pacemaker]), 0)
  record('check (pacemaker, no cluster answers)', ha(['check', '--json', '--config', pacemaker]))
  record('error (rejoin under pacemaker)', ha(['rejoin', 'secondary', '--json', '--config', pacemaker]), 2)
  // With guests: the runbook gains guests-leave and guests-start with their virsh commands; ha
  // check has a row per guest and ha status result.guests (whatever this machine's libvirt says).
  const guests = join(dir, 'ha-guests.yaml')
  writeFileSync(guests, `${readFileSync(withServices, 'utf8')}failover: {mode: service}\nguests: [{name: db1, priority: 10}, {name: web1, with: [db1]}]\n`)
  record('failover --plan --from (guests)', ha(['failover', '--plan', '--from', 'primary', '--json', '--config', guests]), 0)
  record('check (guests)', ha(['check', '--json', '--config', guests]))
  record('status (guests)', ha(['status', '--json', '--config', guests]))
  // The fixture controller has a hand-written cron file; ha schedule would rightly refuse it.
  rmSync(join(root, 'etc/cron.d/ha-backup'))
  record('schedule install', run('schedule', 'install'), 0)
  record('schedule show', run('schedule', 'show'), 0)
  record('schedule remove', run('schedule', 'remove'), 0)
  // ha cluster setup, printed, and applied to a CIB in a file (CIB_file: Pacemaker's own tools, no cluster).
  const clustered = join(dir, 'ha-cluster.yaml')
  writeFileSync(clustered, [
    'data_dir: /var/opt/sun/xvm',
    'nodes: {primary: {hostname: ctl-a}, secondary: {hostname: ctl-b}}',
    'service_ips: [{address: 198.18.1.10/24, interface: eth0}]',
    'storage: {kind: zfs, pool: xvmpool}',
    'services: {start: [/etc/init.d/xvm, start], stop: [/etc/init.d/xvm, stop], status: [/etc/init.d/xvm, status]}',
    'failover: {mode: service}',
    'cluster: {manager: pacemaker, fencing: [{id: fence-a, agent: fence_ipmilan, params: {ip: 10.0.0.1, pcmk_host_list: ctl-a}}]}',
    '',
  ].join('\n'))
  record('cluster setup', ha(['cluster', 'setup', '--json', '--config', clustered]), 0)
  if (existsSync('/usr/sbin/cibadmin')) {
    const cib = join(dir, 'cib.xml')
    writeFileSync(cib, execFileSync('cibadmin', ['--empty'], {encoding: 'utf8'}))
    record('cluster setup --apply', ha(['cluster', 'setup', '--apply', '--json', '--config', clustered], {env: {CIB_file: cib}}), 0)
  } else if (process.env.CI === 'true') {
    throw new Error('the cluster setup contract needs cibadmin under CI (pacemaker-cli-utils)')
  }


  // The failures a runbook meets before anything runs: each one envelope, exit 2, named.
  record('error (config missing)', ha(['backup', '--json', '--config', join(dir, 'missing.yaml')]), 2)
  writeFileSync(join(dir, 'bad.yaml'), 'data_dir: /x\nnodes: {primary: {hostname: a}, secondary: {hostname: b}}\nservice_ips: [{address: 999.1.1.1/99, interface: eth0}]\n')
  record('error (config invalid)', ha(['config', 'check', '--json', '--config', join(dir, 'bad.yaml')]), 2)
  record('error (unknown command)', ha(['bakup', '--json']), 2)
  record('error (flag before the command)', ha(['--json', 'bakup']), 2)
  record('error (extra argument)', ha(['backup', 'verify', 'a', 'b', '--json', '--config', config]), 2)
  record('error (unknown flag)', ha(['backup', '--bogus', '--json', '--config', config]), 2)
  record('error (bad flag value)', ha(['backup', '--node', 'third', '--json', '--config', config]), 2)
  // Help asked for as JSON is an envelope too: the page's text and the commands it lists.
  record('help', ha(['help', '--json']), 0)
  record('help (--help on a command)', ha(['backup', '--help', '--json']), 0)
  record('error (help for an unknown command)', ha(['help', 'bakup', '--json']), 2)
  for (const name of ['error (unknown command)', 'error (extra argument)', 'error (unknown flag)', 'error (bad flag value)']) {
    assert.equal((shapes[name] as {error: {name: string}}).error.name, 'string')
  }

  assert.equal(ha(['backup', '--bogus', '--json']).json?.error?.name, 'UsageError')
  assert.equal(ha(['backup', 'verify', 'a', 'b', '--json']).json?.error?.name, 'UsageError')
  assert.equal(ha(['bakup', '--json']).json?.error?.name, 'UsageError')

  if (process.getuid?.() === 0) {
    // Restore re-owns files: root only. The storage "moves" by copying the data directory.
    const pair = makePair(t)
    assert.equal(ha(['backup', '--config', pair.config, '--node', 'primary']).status, 0)
    moveStorage(pair)
    const restore = (...args: string[]) => ha(['restore', ...args, '--json', '--config', pair.config, '--node', 'secondary'])
    record('error (confirmation needed)', restore(), 4)
    record('restore --dry-run', restore('--dry-run'), 0)
    record('restore', restore('--yes'), 0)
    record('restore --undo', restore('--undo', '--yes'), 0)
    assert.ok(existsSync(backupsOf(pair.secondary)))
  } else if (process.env.CI === 'true') {
    throw new Error('the restore contract needs root under CI')
  }

  // ha init: refused without answers (exit 4), and written from flags against a real sshd.
  record('error (init without a terminal or --yes)', ha(['init', '--json', '--config', join(dir, 'init.yaml')]), 4)
  if (process.getuid?.() === 0) {
    const sshd = await startSshd({t})
    const knownHosts = join(dir, 'init_known_hosts')
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`)
    const print = execFileSync('ssh-keygen', ['-lf', '-'], {encoding: 'utf8', input: sshd.hostKeyLine}).split(' ')[1]
    const init = ha([
      'init', '--yes', '--json', '--no-check', '--config', join(dir, 'init.yaml'), '--address', '127.0.0.1', '--peer', 'localhost',
      '--peer-host-key', print, '--ssh-port', String(sshd.port), '--identity-file', sshd.clientKey, '--known-hosts', knownHosts,
      '--hostname', 'ctl-a', '--peer-hostname', 'ctl-b', '--data-dir', join(dir, 'data'), '--storage', 'none', '--services', '',
    ])
    record('init (--no-check)', init, 0)
    const untested = ha([
      'init', '--yes', '--json', '--no-ssh-test', '--config', join(dir, 'init-untested.yaml'), '--address', '127.0.0.1', '--peer', '127.0.0.2',
      '--hostname', 'ctl-a', '--peer-hostname', 'ctl-b', '--data-dir', join(dir, 'data'), '--storage', 'none', '--services', '',
    ])
    record('init (--no-ssh-test)', untested, 0)
  }

  if (process.env.UPDATE_SNAPSHOTS === '1') writeFileSync(snapshotFile, `${JSON.stringify(shapes, null, 2)}\n`)
  assert.ok(existsSync(snapshotFile), `no ${snapshotFile}: generate it on purpose with UPDATE_SNAPSHOTS=1 npm test -- test/contract`)
  assert.deepEqual(shapes, JSON.parse(readFileSync(snapshotFile, 'utf8')))
})

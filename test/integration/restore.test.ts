import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'
import {gzipSync} from 'node:zlib'

import {acquireLock} from '../../src/lock/lock.js'
import {exited, ha, haSpawn} from '../helpers/cli.js'
import {craftBackup, tarBytes} from '../helpers/craft-archive.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {
  changedPaths,
  dataDirOf,
  fileSha,
  lockOf,
  makePair,
  moveStorage,
  type Pair,
  placeArchive,
  savedSpecs,
  secondarySnapshot,
  version,
} from '../helpers/restore-fixture.js'

/**
 * The runbook's promises for `ha restore`, on two controller roots whose accounts have the same
 * names on different uids (primary from 901, secondary from 1901): a real `ha backup` on the
 * primary, the storage moved, `ha restore` on the secondary.
 */
const skip = missingPrerequisite(['root'])
const undoDir = 'var/opt/sun/xvm/.ha/undo'
const owner = (path: string) => {
  const st = lstatSync(path)
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`
}

/** A pair after a real backup of the primary and a move of the storage to the secondary. */
/** ha restore on the secondary, in this process, so a test can stop it at a chosen progress line. */
async function restoreInProcess(pair: Pair, abort: AbortController, onProgress: (message: string) => unknown): Promise<unknown> {
  const {loadConfig} = await import('../../src/config/load.js')
  const {localNode} = await import('../../src/facts/local-node.js')
  const {parseMapFlags} = await import('../../src/restore/map-flag.js')
  const {runRestore} = await import('../../src/restore/restore.js')
  const {config} = await loadConfig(pair.config)
  return runRestore({
    config,
    dryRun: false,
    ignoreVersion: false,
    maps: parseMapFlags([]),
    node: localNode(config, 'secondary', pair.config),
    onProgress,
    signal: abort.signal,
    takeover: false,
  })
}

function afterFailover(t: Parameters<typeof makePair>[0]): Pair {
  const pair = makePair(t)
  // A setuid helper outside the data directory: chown would clear the bit, restore must keep it.
  const helper = join(pair.primary, 'etc/opt/sun/xvm/helper')
  writeFileSync(helper, '#!/bin/sh\necho helper\n')
  chownSync(helper, 0, 901)
  chmodSync(helper, 0o4750)
  const b = ha(['backup', '--config', pair.config, '--node', 'primary', '--json'])
  assert.equal(b.status, 0, b.stderr)
  moveStorage(pair)
  return pair
}

describe('ha restore', {skip}, () => {
  test('installs the saved files owned by name with setuid intact, re-owns the data directory, and --undo puts it all back', (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    const s = pair.secondary
    const r = pair.restore('--json')
    assert.equal(r.status, 0, r.stderr + r.stdout)
    const result = r.json!.result

    // Saved state files: the primary's content, owned by the secondary's ids for the same names.
    assert.equal(readFileSync(join(s, 'etc/opt/sun/xvm/satellite.conf'), 'utf8'), 'controller=ctl-a\nport=8443\n')
    assert.equal(owner(join(s, 'etc/opt/sun/xvm/satellite.conf')), '1901:1901 0644')
    assert.equal(fileSha(join(s, 'etc/opt/sun/xvm/secret.key')), fileSha(join(pair.primary, 'etc/opt/sun/xvm/secret.key')))
    assert.equal(owner(join(s, 'etc/opt/sun/xvm/secret.key')), '0:0 0600')
    assert.equal(owner(join(s, 'etc/opt/sun/xvm/helper')), '0:1901 4750', 'setuid survives the chown')
    assert.equal(readlinkSync(join(s, 'etc/opt/sun/xvm/localtime')), '/usr/share/zoneinfo/UTC')
    assert.equal(readFileSync(join(s, 'etc/cron.d/ha-backup'), 'utf8'), readFileSync(join(pair.primary, 'etc/cron.d/ha-backup'), 'utf8'))

    // Never installed: accounts (the names to map by), identity without --takeover, machine ids.
    assert.equal(readFileSync(join(s, 'etc/passwd'), 'utf8'), readFileSync(join(s, 'etc/passwd'), 'utf8'))
    assert.match(readFileSync(join(s, 'etc/passwd'), 'utf8'), /^xvm:x:1901:/m)
    assert.equal(readFileSync(join(s, 'etc/hostname'), 'utf8'), 'ctl-b\n')
    assert.equal(before.get('etc/machine-id'), secondarySnapshot(pair).get('etc/machine-id'))
    assert.equal(before.get('etc/ssh/ssh_host_ed25519_key'), secondarySnapshot(pair).get('etc/ssh/ssh_host_ed25519_key'))
    const skipped = Object.fromEntries(result.skipped.map((x: {path: string; reason: string}) => [x.path, x.reason]))
    assert.match(skipped['/etc/passwd'], /account database/)
    assert.match(skipped['/etc/hostname'], /only with --takeover/)
    assert.match(skipped['/n1gc-setup/.version.properties'], /version file/)

    // The data directory, re-owned by name: every entry belongs to the same name as on the primary.
    const d = dataDirOf(s)
    assert.equal(owner(d), '1901:1901 0755')
    assert.equal(owner(join(d, 'db/data.db')), '1902:1902 0644')
    assert.equal(owner(join(d, 'bin/xvm-helper')), '0:1901 4755', 'setuid in the data directory survives the re-own')
    const users = Object.fromEntries(result.reown.users.map((m: {entries: number; from_id: number; name: string; to_id: number}) => [m.name, m]))
    assert.deepEqual([users.xvm.from_id, users.xvm.to_id], [901, 1901])
    assert.ok(users.oracle.entries >= 2)
    assert.match(result.run_id, /^0001-\d{8}T\d{6}Z$/)

    // Undo: the secondary exactly as before (the undo folder itself stays, marked undone).
    const u = pair.restore('--undo', '--json')
    assert.equal(u.status, 0, u.stderr + u.stdout)
    const after = secondarySnapshot(pair)
    const changed = changedPaths(before, after).filter((p) => !p.startsWith(undoDir))
    assert.deepEqual(changed, [])
    const again = pair.restore('--undo', '--json')
    assert.equal(again.status, 0, 'a retried --undo succeeds: nothing left to undo')
    assert.equal(again.json!.result.nothing_to_do, true)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)).filter((p) => !p.startsWith(undoDir)), [], 'and changes nothing')
  })

  test('--takeover also installs identity files, never /etc/machine-id or /etc/hostid', (t) => {
    const pair = afterFailover(t)
    const s = pair.secondary
    const machineId = readFileSync(join(s, 'etc/machine-id'), 'utf8')
    const r = pair.restore('--takeover', '--json')
    assert.equal(r.status, 0, r.stderr + r.stdout)
    assert.equal(readFileSync(join(s, 'etc/hostname'), 'utf8'), 'ctl-a\n')
    assert.equal(fileSha(join(s, 'etc/ssh/ssh_host_ed25519_key')), fileSha(join(pair.primary, 'etc/ssh/ssh_host_ed25519_key')))
    assert.equal(owner(join(s, 'etc/ssh/ssh_host_ed25519_key')), '0:0 0600')
    assert.equal(readFileSync(join(s, 'etc/machine-id'), 'utf8'), machineId)
    assert.match(readFileSync(join(s, 'etc/passwd'), 'utf8'), /^xvm:x:1901:/m, 'passwd is never installed, not even on a takeover')
  })

  test('--dry-run prints the files and per mapping how many entries change, and changes nothing', (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    const r = pair.restore('--dry-run', '--json')
    assert.equal(r.status, 0, r.stderr + r.stdout)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [])
    const result = r.json!.result
    assert.equal(result.dry_run, true)
    assert.equal(result.run_id, null)
    const satellite = result.files.find((f: {path: string}) => f.path === '/etc/opt/sun/xvm/satellite.conf')
    assert.deepEqual([satellite.action, satellite.user, satellite.uid, satellite.mode], ['replace', 'xvm', 1901, '0644'])
    const oracle = result.reown.users.find((m: {name: string}) => m.name === 'oracle')
    assert.deepEqual([oracle.from_id, oracle.to_id, oracle.entries], [902, 1902, 2])
    assert.ok(result.reown.changes > 0)
    // The human rendering says the same, in words.
    const human = pair.restore('--dry-run')
    assert.equal(human.status, 0)
    assert.match(human.stdout, /dry run, nothing changed/)
    assert.match(human.stdout, /replace +\/etc\/opt\/sun\/xvm\/satellite\.conf +xvm:xvm 0644/)
    assert.match(human.stdout, /user oracle: 902 → 1902 \(2 entries\)/)
  })

  test('a second restore finds everything in place and changes nothing', (t) => {
    const pair = afterFailover(t)
    assert.equal(pair.restore().status, 0)
    const before = secondarySnapshot(pair)
    const r = pair.restore('--json')
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.json!.result.counts.create + r.json!.result.counts.replace, 0)
    assert.equal(r.json!.result.reown.changes, 0)
    const changed = changedPaths(before, secondarySnapshot(pair)).filter((p) => !p.startsWith(undoDir))
    assert.deepEqual(changed, [])
  })

  test('a saved name with no account here stops before any change, listing every one; --map resolves them', (t) => {
    const pair = afterFailover(t)
    const s = pair.secondary
    const drop = (file: string, name: string) =>
      writeFileSync(join(s, file), readFileSync(join(s, file), 'utf8').split('\n').filter((l) => !l.startsWith(`${name}:`)).join('\n'))
    drop('etc/passwd', 'oracle')
    drop('etc/group', 'dba')
    const before = secondarySnapshot(pair)
    const r = pair.restore('--json')
    assert.equal(r.status, 1)
    assert.match(r.json!.error!.message, /saved users with no account of that name on this host: oracle/)
    assert.match(r.json!.error!.message, /saved groups with no group of that name on this host: dba/)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [])

    const mapped = pair.restore('--map', 'user:oracle=jet', '--map', 'group:dba=xvm', '--json')
    assert.equal(mapped.status, 0, mapped.stderr + mapped.stdout)
    assert.equal(owner(join(dataDirOf(s), 'db/data.db')), '1903:1901 0644')
  })

  test('refuses a version mismatch unless --ignore-version, which warns loudly', (t) => {
    const pair = afterFailover(t)
    const versionFile = join(pair.secondary, 'n1gc-setup/.version.properties')
    writeFileSync(versionFile, readFileSync(versionFile, 'utf8').replace(`product.version=${version}`, 'product.version=2.1.1.0'))
    const before = secondarySnapshot(pair)
    const refused = pair.restore('--json')
    assert.equal(refused.status, 1)
    assert.match(refused.json!.error!.message, /product version 2\.1\.0\.1234, this host runs 2\.1\.1\.0/)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [])
    const forced = pair.restore('--ignore-version', '--json')
    assert.equal(forced.status, 0, forced.stderr + forced.stdout)
    assert.ok(forced.json!.warnings.some((w: string) => /IGNORING A VERSION MISMATCH/.test(w)))
    assert.match(readFileSync(versionFile, 'utf8'), /product\.version=2\.1\.1\.0/, "this host's version file is never overwritten")
  })

  test('passes over a newer archive truncated since its verification, and says which and why', (t) => {
    const pair = afterFailover(t)
    const newer = craftBackup(savedSpecs(pair), {productVersion: version, seq: 99})
    const gz = gzipSync(tarBytes(newer))
    // Its record still says ok (placeArchive writes one): only re-reading the archive finds the cut.
    placeArchive(pair, newer.manifest.id, gz.subarray(0, gz.length - 30))
    const r = pair.restore('--dry-run', '--json')
    assert.equal(r.status, 0, r.stderr + r.stdout)
    assert.notEqual(r.json!.result.backup.id, newer.manifest.id)
    assert.ok(r.json!.warnings.some((w: string) => w.includes(`passed over newer archive ${newer.manifest.id}: the archive is truncated`)), r.json!.warnings.join('\n'))
  })

  test('a symlink planted by a first archive is never written through by a second one', (t) => {
    const pair = makePair(t)
    const outside = join(pair.dir, 'outside')
    mkdirSync(outside)
    const first = craftBackup([...savedSpecs(pair), {gid: 0, group: 'root', mode: 0o777, path: '/etc/opt/sun/plugins', target: outside, type: 'symlink', uid: 0, user: 'root'}], {productVersion: version, seq: 1})
    placeArchive(pair, first.manifest.id, gzipSync(tarBytes(first)))
    const r1 = pair.restore('--backup', first.manifest.id, '--json')
    assert.equal(r1.status, 0, r1.stderr + r1.stdout)
    assert.equal(readlinkSync(join(pair.secondary, 'etc/opt/sun/plugins')), outside)

    const second = craftBackup(
      [...savedSpecs(pair), {content: '* * * * * root /bin/evil\n', gid: 0, group: 'root', mode: 0o644, path: '/etc/opt/sun/plugins/evil', uid: 0, user: 'root'}],
      {productVersion: version, seq: 2},
    )
    placeArchive(pair, second.manifest.id, gzipSync(tarBytes(second)))
    const before = secondarySnapshot(pair)
    const r2 = pair.restore('--backup', second.manifest.id, '--json')
    assert.equal(r2.status, 1)
    assert.match(r2.json!.error!.message, /etc\/opt\/sun\/plugins \(parent of \/etc\/opt\/sun\/plugins\/evil\) is a symlink: ha never writes through it/)
    assert.deepEqual(readdirSync(outside), [], 'nothing written through the link')
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [])
  })

  test('staging on another filesystem than the targets: files are copied beside the target, then renamed', (t) => {
    const pair = afterFailover(t)
    const varTmp = join(pair.secondary, 'var/tmp')
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'ha-restore-test', varTmp])
    try {
      const r = pair.restore('--json')
      assert.equal(r.status, 0, r.stderr + r.stdout)
      assert.deepEqual(readdirSync(varTmp), [], 'staging removed')
    } finally {
      // Here, not in t.after: the temporary directory's removal (registered first) would hit the mount.
      spawnSync('umount', [varTmp])
    }

    assert.equal(owner(join(pair.secondary, 'etc/opt/sun/xvm/helper')), '0:1901 4750')
    assert.equal(readFileSync(join(pair.secondary, 'etc/opt/sun/xvm/satellite.conf'), 'utf8'), 'controller=ctl-a\nport=8443\n')
    const leftovers = readdirSync(join(pair.secondary, 'etc/opt/sun/xvm')).filter((n) => n.includes('.ha-restore-'))
    assert.deepEqual(leftovers, [])
  })

  test('interrupted after installing: a new run refuses, --undo puts the replaced files and owners back', async (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    // Ctrl-C the moment the last file is installed, i.e. just before the re-own starts.
    const abort = new AbortController()
    await assert.rejects(restoreInProcess(pair, abort, (m) => /^installed (\d+) of \1 files/.test(m) && abort.abort()), /interrupted/)
    assert.equal(readFileSync(join(pair.secondary, 'etc/opt/sun/xvm/satellite.conf'), 'utf8'), 'controller=ctl-a\nport=8443\n', 'the files were installed')
    const again = pair.restore('--json')
    assert.equal(again.status, 5, 'refused: an earlier run stopped mid-way')
    assert.match(again.json!.error!.message, /restore run 0001-\S+ installed its files but did not finish re-owning .*; this ha restore changed nothing/)
    assert.match(again.json!.error!.actions[0], /^ha restore --resume --node secondary --config \S+ finishes/)
    const undo = pair.restore('--undo', '--json')
    assert.equal(undo.status, 0, undo.stderr + undo.stdout)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)).filter((p) => !p.startsWith(undoDir)), [])
    assert.equal(pair.restore('--json').status, 0, 'after the undo a new run goes ahead')
  })

  // The re-own journals in batches of 16,384 changes and reports progress every 10,000 entries:
  // stopped at the first report it has journalled nothing, at the second its journal exists.
  for (const [stopAt, how] of [
    [1, 'before the re-own journalled anything: --resume plans it again from the saved accounts'],
    [2, 'after the re-own started its journal: --resume continues from the journal'],
  ] as const) {
    test(`interrupted ${how}`, async (t) => {
      const pair = afterFailover(t)
      const bulk = join(dataDirOf(pair.secondary), 'bulk')
      mkdirSync(bulk)
      for (let i = 0; i < 40_000; i++) {
        const f = join(bulk, `f${i}`)
        writeFileSync(f, '')
        chownSync(f, 902, 902)
      }

      const abort = new AbortController()
      let reports = 0
      await assert.rejects(
        restoreInProcess(pair, abort, (m) => m.startsWith('re-own:') && ++reports === stopAt && abort.abort()),
        /interrupted/,
      )
      const changedBefore = readdirSync(bulk).filter((n) => lstatSync(join(bulk, n)).uid === 1902).length
      assert.ok(changedBefore < 40_000, 'the re-own stopped part-way')
      const [run] = readdirSync(join(pair.secondary, undoDir))
      assert.equal(existsSync(join(pair.secondary, undoDir, run, 'reown.journal')), stopAt === 2, 'which resume path is taken')
      assert.match(pair.restore('--json').json!.error!.message, /installed its files but did not finish re-owning/)
      const resume = pair.restore('--resume', '--json')
      assert.equal(resume.status, 0, resume.stderr + resume.stdout)
      assert.equal(readdirSync(bulk).filter((n) => lstatSync(join(bulk, n)).uid !== 1902).length, 0, 'every entry re-owned')
      assert.equal(owner(join(dataDirOf(pair.secondary), 'bin/xvm-helper')), '0:1901 4755')
      const again = pair.restore('--resume', '--json')
      assert.equal(again.status, 0, 'a retried --resume succeeds')
      assert.equal(again.json!.result.nothing_to_do, true, 'nothing left to resume')
      // And the finished run undoes as one: the data directory back to the primary's uids.
      assert.equal(pair.restore('--undo', '--json').status, 0)
      assert.equal(readdirSync(bulk).filter((n) => lstatSync(join(bulk, n)).uid !== 902).length, 0)
    })
  }

  for (const phase of ['installing', 'staging-removed']) {
    test(`Ctrl-C at "${phase}" exits 5 naming the command that goes on, which works`, async (t) => {
      const pair = afterFailover(t)
      // The command stops itself there (test hook); Ctrl-C arrives while it is stopped.
      const child = haSpawn(['restore', '--yes', '--json', '--config', pair.config, '--node', 'secondary'], {HA_TEST_PAUSE_AT: phase})
      let stdout = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.resume()
      const end = exited(child)
      for (let i = 0; i < 600 && !/^\d+ \(.*\) T /.test(readFileSync(`/proc/${child.pid}/stat`, 'utf8')); i++) await sleep(50)
      child.kill('SIGINT')
      child.kill('SIGCONT')
      assert.equal(await end, 5, stdout)
      const error = JSON.parse(stdout).error
      assert.match(error.message, /^interrupted while (installing files|re-owning the data directory): restore run \S+ (stopped while installing|installed its files)/)
      const next = /^ha restore (--resume|--undo)/.exec(error.actions[0])
      assert.ok(next, error.actions[0])
      const r = pair.restore(next[1], '--json')
      assert.equal(r.status, 0, r.stderr + r.stdout)
      if (next[1] === '--resume') assert.equal(owner(join(dataDirOf(pair.secondary), 'bin/xvm-helper')), '0:1901 4755')
    })
  }

  test('a run that fails while installing puts back what it installed and says so (exit 1)', (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    // The kernel refuses to replace an immutable file: the install fails after it has already
    // installed the files before it (helper created, satellite.conf replaced).
    const key = join(pair.secondary, 'etc/opt/sun/xvm/secret.key')
    execFileSync('chattr', ['+i', key])
    t.after(() => spawnSync('chattr', ['-i', key]))
    const r = pair.restore('--json')
    execFileSync('chattr', ['-i', key])
    assert.equal(r.status, 1, r.stdout + r.stderr)
    assert.match(r.json!.error!.message, /cannot install .*secret\.key: EPERM.*; every change of restore run \S+ was put back, the host is as it was before/)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)).filter((p) => !p.startsWith(undoDir)), [])
    assert.equal(pair.restore('--json').status, 0, 'the next run goes ahead: the failed one is undone')
  })

  for (const [phase, command] of [
    ['installed', '--resume'],
    ['prepared', '--undo'],
  ] as const) {
    test(`killed at "${phase}": ha restore ${command} run straight away also removes the staging folder with the secret key`, async (t) => {
      const pair = afterFailover(t)
      const child = haSpawn(['restore', '--yes', '--json', '--config', pair.config, '--node', 'secondary'], {HA_TEST_PAUSE_AT: phase})
      child.stdout.resume()
      child.stderr.resume()
      const end = exited(child)
      for (let i = 0; i < 600 && !/^\d+ \(.*\) T /.test(readFileSync(`/proc/${child.pid}/stat`, 'utf8')); i++) await sleep(50)
      const varTmp = join(pair.secondary, 'var/tmp')
      const staging = readdirSync(varTmp).filter((n) => n.startsWith('ha-restore-'))
      assert.equal(staging.length, 1, 'the killed run leaves its staging folder')
      child.kill('SIGKILL')
      await end
      const r = pair.restore(command, '--json')
      assert.equal(r.status, 0, r.stdout + r.stderr)
      assert.deepEqual(readdirSync(varTmp).filter((n) => n.startsWith('ha-restore-')), [])
    })
  }

  test('exits 11 and changes nothing while another ha operation holds the lock', async (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    const lock = await acquireLock(lockOf(pair.secondary), 'test holder')
    try {
      const r = pair.restore('--json')
      assert.equal(r.status, 11)
      assert.match(r.json!.error!.message, /test holder/)
    } finally {
      await lock.release()
    }

    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [])
  })

  test('--map with a bad syntax, or --undo with a restore flag, is a usage error (exit 2)', (t) => {
    const pair = makePair(t)
    const r = pair.restore('--map', 'oracle', '--json')
    assert.equal(r.status, 2)
    assert.match(r.json!.error!.message, /expected user:OLD=NEW, group:OLD=NEW or OLD=NEW/)
    const mixed = pair.restore('--undo', '--takeover', '--json')
    assert.equal(mixed.status, 2)
    assert.match(mixed.json!.error!.message, /--undo cannot be combined with --takeover/)
  })
})


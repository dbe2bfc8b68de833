import assert from 'node:assert/strict'
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {after, before, describe, test} from 'node:test'
import {fileURLToPath} from 'node:url'

import type {CheckItem, CheckReport} from '../../src/check/types.js'
import {parseProperties} from '../../src/facts/version-file.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd, type TestSshd} from '../helpers/sshd.js'

/**
 * `ha check` through the built CLI against two real sshds on 127.0.0.1, each node with its own
 * root folder, the primary's data_dir a real (tmpfs) mount holding a real backup archive.
 * The service IP is from 198.18.0.0/15 on `lo`, where nothing holds it and arping cannot probe.
 */
const skip = missingPrerequisite(['root', 'sshd'])
const top = join(dirname(fileURLToPath(import.meta.url)), '../..')
const dataDir = '/var/opt/sun/xvm'
const serviceIp = '198.18.77.10/24'

interface Run {
  status: number | null
  stdout: string
  stderr: string
  json?: {result?: CheckReport; status: number; error?: {message: string}}
}

describe('ha check against two loopback sshds', {skip}, () => {
  let work: string
  let primary: TestSshd
  let secondary: TestSshd
  let roots: {primary: string; secondary: string}
  let mounted = false

  const writeVersion = (node: 'primary' | 'secondary', text: string) => {
    const file = join(roots[node], 'n1gc-setup/.version.properties')
    mkdirSync(dirname(file), {recursive: true})
    writeFileSync(file, text)
  }

  const writeArchive = (createdAt: Date, seq: number) => {
    const staging = mkdtempSync(join(work, 'archive-'))
    const content = 'x'.repeat(4096)
    mkdirSync(join(staging, 'files/etc/opt/sun'), {recursive: true})
    writeFileSync(join(staging, 'files/etc/opt/sun/ha-test.conf'), content)
    const id = `${createdAt.toISOString().replace(/[-:]|\.\d+/g, '')}-${String(seq).padStart(4, '0')}`
    const manifest = {
      created_at: createdAt.toISOString(),
      data_dir: dataDir,
      entries: [{gid: 0, group: 'root', member: 'files/etc/opt/sun/ha-test.conf', mode: '0644', mtime: createdAt.toISOString(), path: '/etc/opt/sun/ha-test.conf', role: 'state', sha256: createHash('sha256').update(content).digest('hex'), size: content.length, type: 'file', uid: 0, user: 'root'}],
      format: 'ha-backup/1',
      ha_version: '0.1.0',
      host: {boot_id: 'b', hostname: 'ctl-a', node: 'primary'},
      id,
      missing: [],
      product_version: '2.1.0.1234',
      seq,
    }
    writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest))
    const dir = join(roots.primary, dataDir, '.ha/backups')
    mkdirSync(dir, {recursive: true})
    // manifest.json first, as the archive contract says.
    execFileSync('tar', ['-czf', join(dir, `${id}.tar.gz`), '-C', staging, 'manifest.json', 'files/etc/opt/sun/ha-test.conf'])
    rmSync(staging, {recursive: true})
    return id
  }

  const writeConfig = (name: string, over: {secondaryPort?: number; secondaryCommandTimeout?: string; secondaryKnownHosts?: string; extra?: string; storageDevice?: string; client?: 'openssh'} = {}) => {
    const node = (n: 'primary' | 'secondary', sshd: TestSshd, port = sshd.port, commandTimeout = '30s', knownHosts?: string) => `
  ${n}:
    hostname: ctl-${n}
    root: ${roots[n]}
    ssh:
      host: 127.0.0.1
      port: ${port}
      user: root
      identity_file: ${sshd.clientKey}
      known_hosts: ${knownHosts ?? join(work, 'known_hosts')}${knownHosts ? '\n      host_key_policy: accept-new' : ''}
      connect_timeout: 5s
      command_timeout: ${commandTimeout}${over.client ? `\n      client: ${over.client}` : ''}`
    const path = join(work, name)
    writeFileSync(
      path,
      `data_dir: ${dataDir}
nodes:${node('primary', primary)}${node('secondary', secondary, over.secondaryPort, over.secondaryCommandTimeout, over.secondaryKnownHosts)}
service_ips:
  - address: ${serviceIp}
    interface: lo
storage:
  kind: mount
  fstype: tmpfs${over.storageDevice ? `\n  device: ${over.storageDevice}` : ''}
backup:
  max_age: 2h
${over.extra ?? ''}`,
    )
    return path
  }

  const ha = (...args: string[]): Run => {
    const r = spawnSync(process.execPath, [join(top, 'bin/run.js'), 'check', ...args], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}, timeout: 60_000})
    let json
    if (args.includes('--json')) json = JSON.parse(r.stdout)
    return {json, status: r.status, stderr: r.stderr, stdout: r.stdout}
  }

  const byId = (report: CheckReport) => {
    const map: Record<string, CheckItem> = {}
    for (const c of report.checks) map[c.node ? `${c.id}:${c.node}` : c.id] = c
    return map
  }

  before(async () => {
    assert.ok(existsSync(join(top, 'dist/commands/check.js')), 'the CLI is not built: run npm run build (npm test does)')
    work = mkdtempSync(join(tmpdir(), 'ha-check-'))
    roots = {primary: join(work, 'primary/root'), secondary: join(work, 'secondary/root')}
    for (const root of Object.values(roots)) mkdirSync(join(root, dataDir), {recursive: true})
    // Restore stages in the root's /var/tmp (the host disk here), as on a real controller.
    for (const root of Object.values(roots)) mkdirSync(join(root, 'var/tmp'), {recursive: true})
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'ha-test-data', join(roots.primary, dataDir)])
    mounted = true
    ;[primary, secondary] = await Promise.all([startSshd(), startSshd()])
    writeFileSync(join(work, 'known_hosts'), `${primary.knownHostsLine}\n${secondary.knownHostsLine}\n`)
    writeVersion('primary', 'product.version=2.1.0.1234\n')
    writeVersion('secondary', 'product.version=2.1.0.1234\n')
    writeArchive(new Date(Date.now() - 3 * 3600_000), 1)
    writeArchive(new Date(Date.now() - 10 * 60_000), 2)
  })

  after(async () => {
    await Promise.all([primary?.stop(), secondary?.stop()])
    if (mounted) execFileSync('umount', [join(roots.primary, dataDir)])
    rmSync(work, {force: true, recursive: true})
  })

  test('a healthy pair passes; the service IP nobody holds is a warning, and arping on lo is reported as unable to probe', () => {
    const run = ha('--config', writeConfig('healthy.yaml'), '--json')
    assert.equal(run.status, 0, run.stdout + run.stderr)
    const report = run.json!.result!
    const checks = byId(report)
    assert.deepEqual(
      Object.fromEntries(Object.entries(checks).map(([k, c]) => [k, c.status])),
      {
        backup_age: 'pass',
        'boot_config:primary': 'pass',
        'boot_config:secondary': 'pass',
        clock_skew: 'pass',
        'reachable:primary': 'pass',
        'reachable:secondary': 'pass',
        restore_run: 'pass',
        'restore_space:secondary': 'pass',
        roles: 'pass',
        service_ip: 'warn',
        storage: 'pass',
        version: 'pass',
      },
    )
    // No boot configuration on these roots: ifupdown (the default) creates its file when it adds.
    assert.equal(checks['boot_config:primary'].evidence.kind, 'ifupdown')
    assert.match(checks['boot_config:primary'].summary, /^ifupdown: ha can take the service IPs out of and put them into lo in \S+\/etc\/network\/interfaces$/)
    assert.deepEqual(checks.service_ip.evidence.held_by, [])
    const wire = checks.service_ip.evidence.wire as Record<string, {state: string; message: string}>
    for (const node of ['primary', 'secondary']) {
      assert.equal(wire[node].state, 'error')
      assert.match(wire[node].message, /not ARPable/)
    }

    assert.deepEqual(checks.storage.evidence.held_by, ['primary'])
    assert.match(checks.storage.summary, /mounted on primary only from ha-test-data \(tmpfs\)/)
    const newest = checks.backup_age.evidence.newest as {seq: number; age_s: number}
    assert.equal(newest.seq, 2, 'the newest archive is chosen by seq')
    assert.ok(newest.age_s >= 590 && newest.age_s < 700, `age ${newest.age_s}s`)
    assert.equal(checks['restore_space:secondary'].evidence.needed_bytes, 4096)
    assert.equal((checks.version.evidence.primary as {version: string}).version, '2.1.0.1234')
    assert.match(report.nodes.primary.host_key!, /^SHA256:/)
    assert.equal(report.ok, true)
    assert.deepEqual(report.counts, {fail: 0, pass: 11, warn: 1})
    // No takeover yet: the node holding the storage is the active one.
    assert.deepEqual(report.roles, {active: 'primary', epoch: 0, source: 'config', standby: 'secondary'})
    assert.match(checks.roles.summary, /^primary is active, secondary the standby: no takeover yet: primary holds the storage$/)
    // The JSON contract runbooks parse: these keys, snake_case, on the envelope's result.
    assert.deepEqual(Object.keys(report).sort(), ['checks', 'counts', 'mode', 'nodes', 'ok', 'roles', 'strict'])
    assert.deepEqual(report.mode, {cluster: 'none', failover: 'identity'})
    assert.deepEqual(Object.keys(report.nodes.secondary).sort(), ['address', 'elapsed_ms', 'host_key', 'node', 'reachable'])
    for (const c of report.checks) assert.deepEqual(Object.keys(c).filter((k) => k !== 'node').sort(), ['actions', 'evidence', 'id', 'status', 'summary', 'title'])
    assert.match(checks.service_ip.actions!.join('\n'), /198\.18\.77\.10/, 'a warning carries its fix')
    assert.deepEqual(checks.version.actions, [], 'a pass has none')
  })

  test('--strict turns the warning into a failure: exit 3', () => {
    const run = ha('--config', writeConfig('healthy.yaml'), '--json', '--strict')
    assert.equal(run.status, 3)
    const ip = byId(run.json!.result!).service_ip
    assert.equal(ip.status, 'fail')
    assert.equal(ip.strict_promoted, true)
  })

  test('human output is an aligned table naming each check, without colour off a terminal', () => {
    const run = ha('--config', writeConfig('healthy.yaml'))
    assert.equal(run.status, 0)
    assert.doesNotMatch(run.stdout, /\u001B\[/)
    const all = run.stdout.split('\n')
    // Who is active comes first: what the rows call right depends on it.
    assert.equal(all[0], 'Roles: primary active, secondary standby (epoch 0, no takeover yet)')
    // Then what a failover would move.
    assert.equal(all[1], "Mode: a failover moves the service and the active node's identity (failover.mode: identity)")
    assert.equal(all[2], '')
    const lines = all.slice(3)
    assert.match(lines[0], /^STATUS\s+CHECK\s+NODE\s+EVIDENCE$/)
    const evidenceColumn = lines[0].indexOf('EVIDENCE')
    const rows = lines.slice(1, lines.indexOf(''))
    const checkRows = rows.filter((l) => !l.startsWith(' '))
    assert.equal(checkRows.length, 12)
    for (const line of checkRows) assert.match(line.slice(0, 8), /^(PASS|WARN|FAIL) /, line)
    assert.ok(rows.every((l) => l.length > evidenceColumn && l[evidenceColumn - 1] === ' ' && l[evidenceColumn] !== ' '), 'evidence column aligned')
    // The warning's fix sits under its row, in the evidence column.
    const ipRow = rows.findIndex((l) => /Service IP/.test(l))
    assert.match(rows[ipRow + 1], /^\s+→ bring the service up on the active node/)
    assert.match(run.stdout, /11 passed, 1 warned, 0 failed: safe, with warnings/)
  })

  test('--quiet: nothing on success; under --strict one stderr line naming the failed check (for cron)', () => {
    const ok = ha('--config', writeConfig('healthy.yaml'), '--quiet')
    assert.equal(ok.status, 0)
    assert.equal(ok.stdout + ok.stderr, '')
    const strict = ha('--config', writeConfig('healthy.yaml'), '--quiet', '--strict')
    assert.equal(strict.status, 3)
    assert.equal(strict.stdout, '')
    assert.equal(strict.stderr, 'ha: check failed: service_ip\n')
  })

  test('a node whose interface another system configures fails, naming the system and its file; a file ha would refuse fails with the refusal', () => {
    const netplanDir = join(roots.primary, 'etc/netplan')
    mkdirSync(netplanDir, {recursive: true})
    writeFileSync(join(netplanDir, '01-site.yaml'), 'network:\n  ethernets:\n    lo:\n      addresses: [127.0.0.2/8]\n', {mode: 0o600})
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      assert.equal(run.status, 3)
      const row = byId(run.json!.result!)['boot_config:primary']
      assert.equal(row.status, 'fail')
      assert.match(row.summary, /^primary configures lo with netplan \(\S+\/etc\/netplan\/01-site\.yaml\), but boot_config\.kind is ifupdown: a failover would edit a file its boot does not read$/)
      assert.match(row.actions!.join('\n'), /set boot_config: \{kind: netplan\}/)
      assert.equal(byId(run.json!.result!)['boot_config:secondary'].status, 'pass')
      // Configured as netplan, the same file is read, and one cloud-init writes is refused by name.
      const asNetplan = writeConfig('netplan.yaml', {extra: 'boot_config: {kind: netplan}\n'})
      writeFileSync(join(netplanDir, '01-site.yaml'), '# This file is generated from information provided by the datasource.\nnetwork:\n  ethernets:\n    lo:\n      addresses: [127.0.0.2/8]\n', {mode: 0o600})
      const refused = byId(ha('--config', asNetplan, '--json').json!.result!)['boot_config:primary']
      assert.equal(refused.status, 'fail')
      assert.match(refused.summary, /^primary: \/etc\/netplan\/01-site\.yaml: is written by cloud-init/)
    } finally {
      rmSync(netplanDir, {force: true, recursive: true})
    }
  })

  test('a version mismatch fails, naming both versions', () => {
    writeVersion('secondary', 'product.version=2.1.1.99\n')
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      assert.equal(run.status, 3)
      const version = byId(run.json!.result!).version
      assert.equal(version.status, 'fail')
      assert.equal(version.summary, 'versions differ: primary "2.1.0.1234", secondary "2.1.1.99"')
      assert.match(version.actions!.join('\n'), /same product version/)
    } finally {
      writeVersion('secondary', 'product.version=2.1.0.1234\n')
    }
  })

  test('odd but legal .properties syntax reads the same version (continuation, ":" separator, escapes)', () => {
    writeVersion('secondary', '# comment\n! another\n  product.version   :   2.1.\\\n      0.\\u0031\\2\\34\nother=x\n')
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      const version = byId(run.json!.result!).version
      assert.equal(version.status, 'pass', version.summary)
      assert.equal(version.summary, 'both run 2.1.0.1234')
    } finally {
      writeVersion('secondary', 'product.version=2.1.0.1234\n')
    }
  })

  test('a missing version file fails by node and path', () => {
    rmSync(join(roots.secondary, 'n1gc-setup/.version.properties'))
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      assert.equal(run.status, 3)
      assert.match(byId(run.json!.result!).version.summary, new RegExp(`secondary: cannot read ${roots.secondary}/n1gc-setup/\\.version\\.properties: .*No such file`))
    } finally {
      writeVersion('secondary', 'product.version=2.1.0.1234\n')
    }
  })

  test('a newer archive that restore would refuse (corrupt since it was made) or cannot read is passed over, by name, as a warning', () => {
    const dir = join(roots.primary, dataDir, '.ha/backups')
    const badId = writeArchive(new Date(Date.now() - 60_000), 7)
    // Its record still says ok: only re-reading the archive finds the damage, as restore would.
    writeFileSync(join(dir, `${badId}.verify.json`), JSON.stringify({at: new Date().toISOString(), ok: true, problems: []}))
    const gz = readFileSync(join(dir, `${badId}.tar.gz`))
    writeFileSync(join(dir, `${badId}.tar.gz`), gz.subarray(0, gz.length - 20))
    writeFileSync(join(dir, '20991231T000000Z-9999.tar.gz'), 'not gzip')
    writeFileSync(join(dir, '.tmp-1234.tar.gz'), 'a killed run')
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      const backup = byId(run.json!.result!).backup_age
      assert.equal(backup.status, 'warn')
      assert.equal((backup.evidence.newest as {seq: number}).seq, 2)
      const passed = backup.evidence.passed_over as Array<{id: string; reason: string}>
      assert.deepEqual(passed.map((p) => p.id), ['20991231T000000Z-9999', badId])
      assert.match(passed[1].reason, /truncated/)
      assert.match(backup.summary, new RegExp(`restore would pass over .*${badId} \\(.*truncated`))
      assert.equal(backup.evidence.archives, 4, 'the .tmp- leftover is not an archive')
    } finally {
      execFileSync('sh', ['-c', 'rm -f "$1"/*-0007.* "$1"/*-9999.* "$1"/.tmp-*', 'sh', dir])
    }
  })

  test('no backup at all fails backup_age with what to run, and leaves the restore unsized (warning)', () => {
    const dir = join(roots.primary, dataDir, '.ha/backups')
    renameSync(dir, `${dir}.aside`)
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      assert.equal(run.status, 3)
      const checks = byId(run.json!.result!)
      assert.equal(checks.backup_age.status, 'fail')
      assert.match(checks.backup_age.summary, /^no usable backup on primary \(run ha backup there\): ha: no backup directory /)
      assert.equal(checks['restore_space:secondary'].status, 'warn')
      assert.match(checks['restore_space:secondary'].summary, /no backup to size a restore by/)
    } finally {
      renameSync(`${dir}.aside`, dir)
    }
  })

  test('a stale newest backup is a warning with its age', () => {
    writeArchive(new Date(Date.now() - 5 * 3600_000), 3)
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      const backup = byId(run.json!.result!).backup_age
      assert.equal(backup.status, 'warn')
      assert.match(backup.summary, /is 5(\.0)?h old \(max_age 2(\.0)?h\)/)
    } finally {
      execFileSync('sh', ['-c', 'rm -f "$1"/*-0003.tar.gz', 'sh', join(roots.primary, dataDir, '.ha/backups')])
    }
  })

  const epochFile = () => join(roots.primary, dataDir, '.ha/epoch.json')
  const nodeEpochFile = (node: 'primary' | 'secondary') => join(roots[node], 'var/lib/ha/epoch.json')
  const epochJson = (n: number, active: string) => `${JSON.stringify({active, at: '2026-11-29T21:00:00.000Z', by: 'root@admin', epoch: n, run_id: `20261129T210000Z-00000${n}`})}\n`

  test('the roles come from the epoch on the storage: JSON, the table\'s header, and the restore\'s target', () => {
    writeFileSync(epochFile(), epochJson(2, 'primary'))
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      assert.equal(run.status, 0, run.stdout)
      const report = run.json!.result!
      assert.deepEqual(report.roles, {active: 'primary', epoch: 2, source: 'storage', standby: 'secondary'})
      const checks = byId(report)
      assert.match(checks.roles.summary, /^primary is active, secondary the standby: epoch 2, from the shared storage on primary \(run 20261129T210000Z-000002 by root@admin\)$/)
      assert.match(checks.storage.summary, /mounted on primary only from ha-test-data \(tmpfs\), the active node$/)
      assert.equal(checks['restore_space:secondary'].status, 'pass')
      const human = ha('--config', writeConfig('healthy.yaml'))
      assert.equal(human.stdout.split('\n')[0], 'Roles: primary active, secondary standby (epoch 2, from the shared storage)')
    } finally {
      rmSync(epochFile(), {force: true})
    }
  })

  test('the epoch naming the node that does not hold the storage: roles FAIL (a half-done failover), exit 3, roles null', () => {
    writeFileSync(epochFile(), epochJson(1, 'secondary'))
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      assert.equal(run.status, 3)
      const report = run.json!.result!
      assert.equal(report.roles, null)
      const roles = byId(report).roles
      assert.equal(roles.status, 'fail')
      assert.equal(roles.summary, 'which node is active cannot be decided: the epoch (1) says secondary is active, but the storage is attached to primary')
      assert.match(roles.actions!.join('\n'), /ha failover --resume/)
      const human = ha('--config', writeConfig('healthy.yaml'))
      assert.equal(human.stdout.split('\n')[0], 'Roles: cannot be decided (see the roles row)')
    } finally {
      rmSync(epochFile(), {force: true})
    }
  })

  test('a damaged epoch file on the storage fails the roles row naming the file; a damaged one noted on a node is a warning naming it', () => {
    for (const [content, why] of [
      ['{"epoch": 2, "active": "primary"', /is not valid JSON/],
      [epochJson(2, 'ctl-a'), /active must be primary or secondary/],
      ['x'.repeat(5000), /is larger than 4096 bytes/],
    ] as const) {
      writeFileSync(epochFile(), content)
      try {
        const run = ha('--config', writeConfig('healthy.yaml'), '--json')
        assert.equal(run.status, 3)
        const roles = byId(run.json!.result!).roles
        assert.equal(roles.status, 'fail')
        assert.ok(roles.summary.includes(`primary:${epochFile()}`), roles.summary)
        assert.match(roles.summary, why)
      } finally {
        rmSync(epochFile(), {force: true})
      }
    }

    mkdirSync(dirname(nodeEpochFile('secondary')), {recursive: true})
    writeFileSync(nodeEpochFile('secondary'), '\u0000garbage')
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      assert.equal(run.status, 0)
      const roles = byId(run.json!.result!).roles
      assert.equal(roles.status, 'warn')
      assert.match(roles.summary, new RegExp(`left out: secondary:${nodeEpochFile('secondary')} is not valid JSON`))
      assert.equal(run.json!.result!.roles?.active, 'primary')
    } finally {
      rmSync(nodeEpochFile('secondary'), {force: true})
    }
  })

  test('one node unreachable: that node is named, the other is still checked, exit 3', () => {
    const closedPort = secondary.port === 1 ? 2 : 1
    const run = ha('--config', writeConfig('unreachable.yaml', {secondaryPort: closedPort}), '--json')
    assert.equal(run.status, 3)
    const report = run.json!.result!
    const checks = byId(report)
    assert.equal(report.nodes.primary.reachable, true)
    assert.equal(report.nodes.secondary.reachable, false)
    assert.equal(report.nodes.secondary.error?.kind, 'refused')
    assert.equal(checks['reachable:primary'].status, 'pass')
    assert.equal(checks['reachable:secondary'].status, 'fail')
    assert.match(checks['reachable:secondary'].summary, new RegExp(`^cannot connect to secondary \\(root@127\\.0\\.0\\.1:${closedPort}\\): connection refused`))
    // The primary was still probed: its version was read, and its storage seen.
    assert.equal((checks.version.evidence.primary as {version: string}).version, '2.1.0.1234')
    assert.equal(checks.version.status, 'fail')
    assert.match(checks.version.summary, /secondary: secondary unreachable/)
    assert.equal(checks.storage.status, 'fail')
    assert.deepEqual(checks.storage.evidence.held_by, ['primary'])
    assert.equal(checks.service_ip.status, 'fail')
    assert.equal(checks.clock_skew.status, 'warn')
  })

  test('a changed host key on one node fails that node by name with both fingerprints; the other is still checked', () => {
    const other = makeKey(join(work, `other-${Date.now()}`))
    const knownHosts = join(work, 'known_hosts')
    writeFileSync(knownHosts, `${primary.knownHostsLine}\n[127.0.0.1]:${secondary.port} ${other}\n`)
    try {
      const run = ha('--config', writeConfig('healthy.yaml'), '--json')
      assert.equal(run.status, 3)
      const report = run.json!.result!
      assert.equal(report.nodes.secondary.error?.kind, 'host_key_changed')
      const reach = byId(report)['reachable:secondary']
      assert.equal(reach.status, 'fail')
      assert.match(reach.summary, /^cannot connect to secondary \(root@127\.0\.0\.1:\d+\): THE HOST KEY HAS CHANGED: the server presented SHA256:\S+, but \[127\.0\.0\.1\]:\d+ is known with SHA256:\S+/)
      assert.match(String((reach.evidence.actions as string[]).join('\n')), /ssh-keygen -R/)
      assert.equal(byId(report)['reachable:primary'].status, 'pass')
      assert.equal(byId(report).storage.evidence.held_by instanceof Array, true)
    } finally {
      writeFileSync(knownHosts, `${primary.knownHostsLine}\n${secondary.knownHostsLine}\n`)
    }
  })

  test('ssh.client: openssh gives the same report, exit code and JSON shape as ssh2: healthy, one node refused, one host key changed', () => {
    // What may differ between two runs: timings, the clock reading, a backup's age in seconds, free space.
    const comparable = (run: Run) => {
      const report = run.json!.result!
      const steady = (c: CheckItem) => (['clock_skew', 'backup_age'].includes(c.id) ? '' : c.summary.replaceAll(/\d+\.\d MiB free/g, '… MiB free'))
      return {
        checks: report.checks.map((c) => ({id: c.id, node: c.node, status: c.status, summary: steady(c)})),
        nodes: Object.fromEntries(Object.entries(report.nodes).map(([n, r]) => [n, {...r, elapsed_ms: 0}])),
        ok: report.ok,
        status: run.status,
      }
    }

    const closedPort = secondary.port === 1 ? 2 : 1
    const other = makeKey(join(work, `other-openssh-${Date.now()}`))
    const knownHosts = join(work, 'known_hosts')
    const cases = [
      {name: 'healthy', over: {}, status: 0},
      {name: 'refused', over: {secondaryPort: closedPort}, status: 3},
      {changeKey: true, name: 'changed', over: {}, status: 3},
    ]
    for (const c of cases) {
      if (c.changeKey) writeFileSync(knownHosts, `${primary.knownHostsLine}\n[127.0.0.1]:${secondary.port} ${other}\n`)
      try {
        const viaSsh2 = ha('--config', writeConfig(`${c.name}-ssh2.yaml`, c.over), '--json')
        const viaOpenssh = ha('--config', writeConfig(`${c.name}-openssh.yaml`, {...c.over, client: 'openssh'}), '--json')
        assert.equal(viaOpenssh.status, c.status, `${c.name}: ${viaOpenssh.stdout}${viaOpenssh.stderr}`)
        const [a, b] = [comparable(viaSsh2), comparable(viaOpenssh)]
        if (c.name === 'changed') {
          // The message is ha's in both; the changed key's text says the same things in the same order.
          const summary = (x: typeof a) => x.checks.find((k) => k.id === 'reachable' && k.node === 'secondary')!.summary
          assert.match(summary(b), /^cannot connect to secondary \(root@127\.0\.0\.1:\d+\): THE HOST KEY HAS CHANGED: the server presented SHA256:\S+, but \[127\.0\.0\.1\]:\d+ is known with SHA256:\S+/)
          for (const x of [a, b]) {
            x.checks = x.checks.map((k) => (k.id === 'reachable' && k.node === 'secondary' ? {...k, summary: ''} : k))
            x.nodes.secondary = {...x.nodes.secondary, error: {...x.nodes.secondary.error!, actions: [], message: ''}}
          }
        }

        if (c.name === 'refused') {
          // ssh's error text differs from Node's: the kind and the first words do not.
          for (const x of [a, b]) x.nodes.secondary = {...x.nodes.secondary, error: {...x.nodes.secondary.error!, actions: []}}
        }

        assert.deepEqual(b, a, c.name)
      } finally {
        writeFileSync(knownHosts, `${primary.knownHostsLine}\n${secondary.knownHostsLine}\n`)
      }
    }
  })

  test('a probe batch that outlives command_timeout fails that node as "answered, but its probes failed"', () => {
    const run = ha('--config', writeConfig('slow.yaml', {secondaryCommandTimeout: '0.001s'}), '--json')
    assert.equal(run.status, 3)
    const report = run.json!.result!
    assert.equal(report.nodes.secondary.reachable, true)
    assert.equal(report.nodes.secondary.error?.kind, 'probe_failed')
    const reach = byId(report)['reachable:secondary']
    assert.equal(reach.status, 'fail')
    assert.match(reach.summary, /^secondary answered \(host key good\), but its probe batch failed: secondary \(root@127\.0\.0\.1:\d+\): `sh -c "<probe batch: version, ip_addr, .*>"` timed out after 0\.001s/)
    assert.equal(byId(report)['reachable:primary'].status, 'pass')
    // The other rows say what failed, never "unreachable" for a node that answered.
    assert.match(byId(report).version.summary, /secondary answered but its probes failed \(.*timed out/)
    assert.doesNotMatch(report.checks.map((c) => c.summary).join('\n'), /unreachable/)
  })

  test('the version file is read as bytes, ISO-8859-1, over ssh: 0xE9 and UTF-8 "é" differ; two invalid bytes never compare equal', () => {
    const latin = Buffer.concat([Buffer.from('product.version=2.1-caf'), Buffer.from([0xe9]), Buffer.from('\n')])
    const file = (node: 'primary' | 'secondary') => join(roots[node], 'n1gc-setup/.version.properties')
    try {
      writeFileSync(file('primary'), latin)
      writeFileSync(file('secondary'), 'product.version=2.1-café\n')
      let version = byId(ha('--config', writeConfig('healthy.yaml'), '--json').json!.result!).version
      assert.equal(version.status, 'fail')
      assert.equal((version.evidence.primary as {version: string}).version, '2.1-café')
      assert.equal((version.evidence.secondary as {version: string}).version, '2.1-caf\u00C3\u00A9')
      writeFileSync(file('secondary'), latin)
      assert.equal(byId(ha('--config', writeConfig('healthy.yaml'), '--json').json!.result!).version.status, 'pass')
      writeFileSync(file('primary'), Buffer.from([...Buffer.from('product.version=2.'), 0xff, 0x0a]))
      writeFileSync(file('secondary'), Buffer.from([...Buffer.from('product.version=2.'), 0xfe, 0x0a]))
      version = byId(ha('--config', writeConfig('healthy.yaml'), '--json').json!.result!).version
      assert.equal(version.status, 'fail', 'U+FFFD on both sides would have passed this')
    } finally {
      writeVersion('primary', 'product.version=2.1.0.1234\n')
      writeVersion('secondary', 'product.version=2.1.0.1234\n')
    }
  })

  test('a malformed \\uXXXX anywhere in the version file: FAIL "unreadable", naming the line, never a made-up version', () => {
    writeVersion('secondary', 'product.version=2.1.0.1234\n# fine\nbuild=\\uZZZZ\n')
    try {
      const run = ha('--config', writeConfig('healthy.yaml'))
      assert.equal(run.status, 3)
      assert.match(run.stdout, /FAIL\s+Product version parity\s+cannot compare versions: secondary: \S+\.version\.properties is unreadable as Java reads it: line 3/)
      assert.match(run.stdout, /→ secondary: fix line 3 of /)
    } finally {
      writeVersion('secondary', 'product.version=2.1.0.1234\n')
    }
  })

  test('a version file that blocks on read (a FIFO): the version row names the timed-out probe; the node is not "unreachable"', () => {
    const file = join(roots.secondary, 'n1gc-setup/.version.properties')
    rmSync(file)
    execFileSync('mkfifo', [file])
    try {
      const run = ha('--config', writeConfig('fifo.yaml', {secondaryCommandTimeout: '3s'}), '--json')
      assert.equal(run.status, 3)
      const checks = byId(run.json!.result!)
      assert.equal(checks['reachable:secondary'].status, 'pass', 'the rest of the batch answered')
      assert.equal(checks.version.status, 'fail')
      assert.match(checks.version.summary, /secondary: \S+\.version\.properties: reading the version file timed out after 1s and was killed \(probe version\)/)
      assert.match(checks.version.actions!.join('\n'), /FIFO/)
      assert.equal(checks.storage.status, 'pass')
    } finally {
      rmSync(file)
      writeVersion('secondary', 'product.version=2.1.0.1234\n')
    }
  })

  test('the ssh connection cut mid-batch: the node "answered but its probes failed", on every row, never "unreachable"', async () => {
    const file = join(roots.secondary, 'n1gc-setup/.version.properties')
    rmSync(file)
    execFileSync('mkfifo', [file])
    try {
      const config = writeConfig('cut.yaml', {secondaryCommandTimeout: '9s'})
      const child = spawn(process.execPath, [join(top, 'bin/run.js'), 'check', '--json', '--config', config], {env: {...process.env, NO_COLOR: '1'}})
      let stdout = ''
      child.stdout.on('data', (d) => (stdout += d))
      const closed = new Promise<null | number>((resolve) => child.on('close', resolve))
      // Once the batch is blocked on the FIFO (3s probe budget), cut the secondary's session under it.
      for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', '--', file]).status !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
      for (const pid of spawnSync('pgrep', ['-P', String(secondary.pid)], {encoding: 'utf8'}).stdout.split('\n').filter(Boolean)) spawnSync('kill', ['-KILL', pid])
      assert.equal(await closed, 3, stdout)
      const report = (JSON.parse(stdout) as {result: CheckReport}).result
      const checks = byId(report)
      assert.equal(report.nodes.secondary.reachable, true)
      assert.match(checks['reachable:secondary'].summary, /^secondary answered \(host key good\), but its probe batch failed: /)
      assert.ok(checks['reachable:secondary'].actions!.length > 0, 'with what to do')
      assert.match(checks.version.summary, /secondary: secondary answered but its probes failed/)
      assert.match(checks.storage.summary, /secondary: secondary answered but its probes failed/)
      assert.doesNotMatch(report.checks.map((c) => c.summary).join('\n'), /unreachable/)
    } finally {
      rmSync(file, {force: true})
      writeVersion('secondary', 'product.version=2.1.0.1234\n')
    }
  })

  test('every byte 0x00-0xFF of the version file arrives over ssh unmodified and reads as Java reads it', () => {
    const all = Buffer.from(Array.from({length: 256}, (_, i) => i).filter((b) => ![0x0a, 0x0d, 0x5c].includes(b)))
    const bytes = Buffer.concat([Buffer.from('product.version=v'), all, Buffer.from('\n')])
    const expected = parseProperties(bytes).get('product.version')
    assert.equal(expected!.length, 1 + 253, 'one character per byte (ISO-8859-1)')
    writeFileSync(join(roots.primary, 'n1gc-setup/.version.properties'), bytes)
    writeFileSync(join(roots.secondary, 'n1gc-setup/.version.properties'), bytes)
    try {
      const version = byId(ha('--config', writeConfig('healthy.yaml'), '--json').json!.result!).version
      assert.equal(version.status, 'pass', version.summary)
      assert.equal((version.evidence.primary as {version: string}).version, expected)
      assert.equal((version.evidence.secondary as {version: string}).version, expected)
    } finally {
      writeVersion('primary', 'product.version=2.1.0.1234\n')
      writeVersion('secondary', 'product.version=2.1.0.1234\n')
    }
  })

  test('an unfinished ha restore on a node: FAIL naming ha restore --resume and --undo', () => {
    const undo = join(roots.primary, dataDir, '.ha/undo/0003-20261129T120000Z')
    mkdirSync(undo, {recursive: true})
    const journal = {backup_id: 'x', changes: [], created_at: new Date().toISOString(), format: 'ha-restore-undo/1', root: roots.primary, run_id: '0003-20261129T120000Z', state: 'installed'}
    writeFileSync(join(undo, 'journal.json'), JSON.stringify(journal))
    try {
      const run = ha('--config', writeConfig('healthy.yaml'))
      assert.equal(run.status, 3)
      assert.match(run.stdout, /FAIL\s+No unfinished restore\s+primary\s+on primary: restore run 0003-20261129T120000Z installed its files but did not finish re-owning/)
      assert.match(run.stdout, /→ on primary: ha restore --resume finishes restore run 0003-20261129T120000Z/)
      assert.match(run.stdout, /→ on primary: or ha restore --undo puts the host back/)
      writeFileSync(join(undo, 'journal.json'), JSON.stringify({...journal, state: 'done'}))
      assert.equal(byId(ha('--config', writeConfig('healthy.yaml'), '--json').json!.result!).restore_run.status, 'pass', 'a finished run is fine')
    } finally {
      rmSync(join(roots.primary, dataDir, '.ha/undo'), {force: true, recursive: true})
    }
  })

  test('another filesystem mounted at data_dir while storage.device names the shared device: FAIL by name with the fix', () => {
    const run = ha('--config', writeConfig('device.yaml', {extra: '', storageDevice: '/dev/disk/by-id/ha-test-shared-lun'}))
    assert.equal(run.status, 3)
    assert.match(run.stdout, /FAIL\s+Storage \(data_dir mounted\)\s+the wrong filesystem is mounted at data_dir: primary: \S+ is mounted from ha-test-data, not from storage\.device \/dev\/disk\/by-id\/ha-test-shared-lun/)
    assert.match(run.stdout, /→ unmount what is mounted at \S+\/var\/opt\/sun\/xvm on primary, or set storage\.device/)
  })

  test('a separate, full /etc on the node taking over: restore_space FAILs on that filesystem, not only data_dir\'s parent', () => {
    const etc = join(roots.secondary, 'etc')
    mkdirSync(etc, {recursive: true})
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'ha-test-etc', etc])
    try {
      // Fill it: what is left is less than the 4 KiB the archive puts under /etc.
      spawnSync('dd', ['if=/dev/zero', `of=${join(etc, 'filler')}`, 'bs=4k'], {stdio: 'ignore'})
      const run = ha('--config', writeConfig('etc.yaml', {extra: '  include:\n    - /etc/ha-test.conf\n'}))
      assert.equal(run.status, 3, run.stdout)
      assert.match(run.stdout, /FAIL\s+Free space for a restore\s+secondary\s+.*not enough room on secondary: 0\.0 MiB free on \S+\/secondary\/root\/etc \(install \S+\/etc\/\S+( and \d+ more)?\) needs 0\.0 MiB/)
      assert.match(run.stdout, /→ free space on \S+\/etc on secondary \(restore installs/)
    } finally {
      execFileSync('umount', [etc])
    }
  })

  test('accept-new with a known_hosts that cannot be written: the node is checked, and the warning is in --json and on stderr', () => {
    // Its folder does not exist, so the new key cannot be remembered (ssh says "Failed to add the host").
    const knownHosts = join(work, 'no-such-dir/known_hosts')
    const config = writeConfig('accept-new.yaml', {secondaryKnownHosts: knownHosts})
    const warning = new RegExp(`secondary: could not add the new host key SHA256:\\S+ for \\[127\\.0\\.0\\.1\\]:${secondary.port} to ${knownHosts.replaceAll('.', '\\.')} \\(.*\\); connected anyway`)
    const json = ha('--config', config, '--json')
    assert.equal(byId(json.json!.result!)['reachable:secondary'].status, 'pass')
    assert.equal(json.json!.result!.nodes.secondary.reachable, true)
    const warnings = (json.json as unknown as {warnings: string[]}).warnings
    assert.equal(warnings.length, 1, JSON.stringify(warnings))
    assert.match(warnings[0], warning)
    assert.equal(json.status, 0, json.stdout)
    const human = ha('--config', config)
    assert.equal(human.status, 0, human.stdout + human.stderr)
    assert.match(human.stderr, new RegExp(`^warning: ${warning.source}`, 'm'))
    assert.equal(existsSync(knownHosts), false)
  })

  test('a bad config is exit 2 naming the file and field, and connects to nothing', () => {
    const path = join(work, 'bad.yaml')
    writeFileSync(path, `data_dir: ${dataDir}\nnodes:\n  primary:\n    hostname: a\n    ssh:\n      host: 127.0.0.1\n      port: seventy\n  secondary:\n    hostname: b\n`)
    const run = ha('--config', path, '--json')
    assert.equal(run.status, 2)
    assert.match(run.json!.error!.message, /bad\.yaml:7: nodes\.primary\.ssh\.port: must be number/)
  })
})

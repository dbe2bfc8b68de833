import assert from 'node:assert/strict'
import {lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {test} from 'node:test'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {backupExcludes, collect, specCoverage} from '../../src/backup/collect.js'
import {loadManifestSpec} from '../../src/backup/manifest-spec.js'
import {parseConfig} from '../../src/config/load.js'
import {tempDir} from '../helpers/cli.js'

/**
 * Restore installs only what this node's backup would have saved. specCoverage answers that for
 * one path; collect() is what a backup really saves. Differential: on a real tree full of paths
 * the spec does and does not reach (globs, excludes, machine identity files, the data directory,
 * ha's own folder, a directory symlink), both must agree on every path and on its role.
 */
test('specCoverage agrees with what collect() saves, path by path and role by role', async (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'root')
  makeControllerRoot(root, {sshKeys: false})
  const put = (path: string, content = 'x\n') => {
    mkdirSync(dirname(join(root, path)), {recursive: true})
    writeFileSync(join(root, path), content)
  }

  for (const path of [
    '/etc/ssh/ssh_host_rsa_key',
    '/etc/ssh/ssh_host_rsa_key.pub',
    '/etc/ssh/ssh_config',
    '/etc/ssh/ssh_host_rsa_key.old',
    '/etc/shadow',
    '/etc/sudoers.d/90-xvm',
    '/root/.ssh/authorized_keys',
    '/etc/opt/sun/xvm/old.bak',
    '/etc/opt/sun/xvm/deep/er/still.conf',
    '/etc/opt/sun/xvm/deep/er/old.bak',
    '/etc/opt/sun/.hidden',
    '/etc/cron.d/.placeholder',
    '/etc/cron.d/skip-me',
    '/etc/systemd/system/other.service',
    '/etc/systemd/system/xvm-db.service',
    '/opt/xvm/a.conf',
    '/opt/xvm/b.txt',
    '/opt/xvm/sub/c.conf',
    '/usr/local/etc/xvm/site.conf',
    '/usr/local/bin/xvm-helper',
    '/var/opt/sun/xvm/.ha/undo/0001/journal.json',
    '/var/opt/sun/xvm/.ha/backups/x.tar.gz',
    '/etc/opt/sun/xvm/machine-id',
  ]) put(path)
  mkdirSync(join(root, 'srv/elsewhere'), {recursive: true})
  put('/srv/elsewhere/through-link.conf')
  symlinkSync('/srv/elsewhere', join(root, 'etc/opt/sun/linked'))

  const text = `${controllerConfig({include: ['/opt/xvm/*.conf', '/usr/local/etc/xvm', '{path: /etc/opt/sun/xvm/deep, role: identity}'], primaryRoot: root})}  exclude:\n    - /etc/opt/sun/xvm/**/*.bak\n    - /etc/cron.d/skip-*\n`
  const config = parseConfig(text, join(dir, 'ha.yaml'))
  const specs = await loadManifestSpec(config)
  const saved = await collect(root, specs, backupExcludes(config))
  const savedRole = new Map([...saved.entries].map((e) => [e.path, e.role]))
  const covers = specCoverage(specs, backupExcludes(config))

  const disagreements: string[] = []
  let paths = 0
  const walk = (path: string) => {
    paths++
    const want = savedRole.get(path)
    const got = covers(path)
    if (want !== got) disagreements.push(`${path}: collect saved ${want ?? 'nothing'}, specCoverage says ${got ?? 'nothing'}`)
    const st = lstatSync(join(root, path))
    if (st.isDirectory()) for (const name of readdirSync(join(root, path))) walk(`${path}/${name}`)
  }

  for (const name of readdirSync(root)) walk(`/${name}`)
  assert.deepEqual(disagreements, [])
  assert.ok(paths > 60, `walked ${paths} paths`)
  // The cases the restore refusal depends on, spelled out.
  assert.equal(covers('/etc/shadow'), undefined)
  assert.equal(covers('/root/.ssh/authorized_keys'), undefined)
  assert.equal(covers('/etc/sudoers.d/90-xvm'), undefined)
  assert.equal(covers('/var/opt/sun/xvm/.ha/undo/0001/journal.json'), undefined)
  assert.equal(covers('/etc/opt/sun/xvm/old.bak'), undefined)
  assert.equal(covers('/etc/hostname'), 'identity')
  assert.equal(covers('/etc/opt/sun/xvm/satellite.conf'), 'state')
  // The first spec that reaches a path gives its role, as in collect(): /etc/opt/sun comes first.
  assert.equal(covers('/etc/opt/sun/xvm/deep/er/still.conf'), 'state')
})

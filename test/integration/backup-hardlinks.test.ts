import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {linkSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {ha, tempDir} from '../helpers/cli.js'

test('two hard-linked names are both saved as whole files: the backup verifies, GNU tar and restore --dry-run read them', (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  mkdirSync(join(root, 'etc/opt/sun/linked'), {recursive: true})
  writeFileSync(join(root, 'etc/opt/sun/linked/a.conf'), 'shared=1\n')
  linkSync(join(root, 'etc/opt/sun/linked/a.conf'), join(root, 'etc/opt/sun/linked/b.conf'))
  assert.equal(statSync(join(root, 'etc/opt/sun/linked/b.conf')).nlink, 2)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({include: ['/etc/opt/sun/linked'], primaryRoot: root}))

  const backup = ha(['backup', '--json', '--config', config, '--node', 'primary'])
  assert.equal(backup.status, 0, backup.stdout + backup.stderr)
  const backups = join(root, 'var/opt/sun/xvm/.ha/backups')
  const [archive] = readdirSync(backups).filter((n) => n.endsWith('.tar.gz'))
  const listing = execFileSync('tar', ['-tzvf', join(backups, archive)], {encoding: 'utf8'})
  for (const name of ['a.conf', 'b.conf']) assert.match(listing, new RegExp(`^-\\S+ .* files/etc/opt/sun/linked/${name}$`, 'm'), listing)
  const out = tempDir(t)
  execFileSync('tar', ['-xzf', join(backups, archive), '-C', out])
  assert.equal(readFileSync(join(out, 'files/etc/opt/sun/linked/b.conf'), 'utf8'), 'shared=1\n')

  assert.equal(ha(['backup', 'verify', '--config', config, '--node', 'primary']).status, 0)
  const dry = ha(['restore', '--dry-run', '--json', '--config', config, '--node', 'primary'])
  assert.equal(dry.status, 0, dry.stdout + dry.stderr)
  assert.equal(dry.json?.result.backup.id, backup.json?.result.id)
})

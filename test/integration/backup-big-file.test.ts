import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {controllerConfig, makeControllerRoot} from '../../scripts/controller-root.mjs'
import {ha, tempDir} from '../helpers/cli.js'

// Files above 8 MiB are read in parts (src/backup/archive.ts), not in one synchronous call: the
// archive must be the same tar GNU tar reads, whichever way a file went in.
test('a file larger than the streamed threshold is saved byte for byte beside small ones: GNU tar extracts it, verify and restore --dry-run accept it', (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'primary')
  makeControllerRoot(root)
  const big = randomBytes(24 * 1024 * 1024 + 123)
  mkdirSync(join(root, 'etc/opt/sun/big/deep'), {recursive: true})
  writeFileSync(join(root, 'etc/opt/sun/big/a-small.conf'), 'before=1\n')
  writeFileSync(join(root, 'etc/opt/sun/big/deep/image.bin'), big)
  writeFileSync(join(root, 'etc/opt/sun/big/z-small.conf'), 'after=1\n')
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, controllerConfig({include: ['/etc/opt/sun/big'], primaryRoot: root}))

  const backup = ha(['backup', '--json', '--config', config, '--node', 'primary'])
  assert.equal(backup.status, 0, backup.stdout + backup.stderr)
  const backups = join(root, 'var/opt/sun/xvm/.ha/backups')
  const [archive] = readdirSync(backups).filter((n) => n.endsWith('.tar.gz'))
  const out = tempDir(t)
  execFileSync('tar', ['-xzf', join(backups, archive), '-C', out])
  assert.ok(readFileSync(join(out, 'files/etc/opt/sun/big/deep/image.bin')).equals(big))
  assert.equal(readFileSync(join(out, 'files/etc/opt/sun/big/a-small.conf'), 'utf8'), 'before=1\n')
  assert.equal(readFileSync(join(out, 'files/etc/opt/sun/big/z-small.conf'), 'utf8'), 'after=1\n')
  assert.equal(ha(['backup', 'verify', '--config', config, '--node', 'primary']).status, 0)
  const dry = ha(['restore', '--dry-run', '--json', '--config', config, '--node', 'primary'])
  assert.equal(dry.status, 0, dry.stdout + dry.stderr)
})

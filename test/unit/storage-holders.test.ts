import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {isHaBackupCommand} from '../../src/steps/release-storage.js'

const cmdline = (...argv: string[]) => `${argv.join('\0')}\0`

describe('release-storage: which holders of the storage are ha backups it waits for', () => {
  it('cron\'s ha backup as installed by npm (node /usr/local/bin/ha), as the lab runs it (node …/bin/run.js), or a binary named ha', () => {
    assert.equal(isHaBackupCommand(cmdline('node', '/usr/local/bin/ha', 'backup', '--quiet', '--if-attached')), true)
    assert.equal(isHaBackupCommand(cmdline('/usr/bin/node', '/opt/ha/bin/run.js', '--quiet', 'backup')), true)
    assert.equal(isHaBackupCommand(cmdline('/usr/local/bin/ha', 'backup', 'verify')), true)
    assert.equal(isHaBackupCommand(cmdline('/root/.cache/node24/bin/node24', '/usr/local/bin/ha', 'backup')), true)
  })

  it('anything else holding the storage is the operator\'s: another ha command, a shell, a program whose arguments merely say ha backup', () => {
    for (const argv of [
      ['node', '/usr/local/bin/ha', 'restore'],
      ['node', '/usr/local/bin/ha', 'failover', 'backup'],
      ['node', '/usr/local/bin/ha'],
      ['bash'],
      ['vi', 'ha', 'backup'],
      ['python3', '/usr/local/bin/ha', 'backup'],
      ['sh', '-c', 'ha backup'],
      ['node', '/srv/app/server.js', 'ha', 'backup'],
      [''],
    ]) assert.equal(isHaBackupCommand(cmdline(...argv)), false, JSON.stringify(argv))
    assert.equal(isHaBackupCommand(''), false)
  })

  it('reads real processes\' /proc/PID/cmdline: node running a script named ha with backup is one, node -e with the same words is not', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ha-holders-'))
    t.after(() => rmSync(dir, {force: true, recursive: true}))
    writeFileSync(join(dir, 'ha'), 'setTimeout(() => {}, 10000)\n')
    const started = (argv: string[]) => {
      const child = spawn(process.execPath, argv, {stdio: 'ignore'})
      t.after(() => child.kill('SIGKILL'))
      return new Promise<Buffer>((resolve) => child.once('spawn', () => resolve(readFileSync(`/proc/${child.pid}/cmdline`))))
    }

    assert.equal(isHaBackupCommand(await started([join(dir, 'ha'), 'backup', '--quiet'])), true)
    assert.equal(isHaBackupCommand(await started(['-e', 'setTimeout(() => {}, 10000)', 'ha', 'backup'])), false)
  })
})

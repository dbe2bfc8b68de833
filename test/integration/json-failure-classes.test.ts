import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {createServer, type Socket} from 'node:net'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {makeControllerRoot} from '../../scripts/controller-root.mjs'
import {exitCodeMeaning} from '../../src/core/errors.js'
import {haBin, repoRoot} from '../helpers/cli.js'
import {closedPort} from '../helpers/loopback-pair.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * Every command (from the manifest, so a new one is covered the day it lands) run with --json
 * under each class of failure an operator meets: nodes that do not answer, a config that does not
 * parse, a flag without its value, a stdout that cannot be written, and SIGTERM while it waits.
 * Each run must end in one envelope on stdout (or, when stdout cannot be written, one line on
 * stderr), never a stack trace, with an exit code the documentation names. The lab's commands
 * are left out: they build network namespaces and mounts (test/lab covers them).
 */
const argsFor: Record<string, string[]> = {
  autocomplete: ['bash'],
  backup: ['--node', 'primary'],
  'backup list': ['--node', 'primary'],
  'backup verify': ['--node', 'primary'],
  check: [],
  'cluster setup': [],
  'config check': [],
  failover: ['--plan'],
  help: [],
  init: [],
  rejoin: ['secondary'],
  restore: ['--dry-run', '--node', 'secondary'],
  'schedule install': ['--node', 'primary'],
  'schedule remove': ['--node', 'primary'],
  'schedule show': ['--node', 'primary'],
  status: [],
  unlock: ['--node', 'primary'],
}
/** Commands that never read the config. */
const configless = new Set(['autocomplete', 'help', 'init'])

const manifest = JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, {hidden?: boolean; id: string}>}
const commands = Object.values(manifest.commands)
  .filter((c) => !c.hidden && !c.id.startsWith('lab'))
  .map((c) => c.id.replaceAll(':', ' '))
  .sort()
const documented = new Set(Object.keys(exitCodeMeaning).map(Number))
const stackTrace = /^\s+at .+:\d+:\d+\)?$|node:internal|Node\.js v\d|^\S*Error: .*\n\s+at /m

interface Run {
  code: null | number
  stderr: string
  stdout: string
}

function runHa(argv: string[], options: {killAfterMs?: number; stdoutTo?: string} = {}): Promise<Run> {
  return new Promise((resolve) => {
    const out = options.stdoutTo ? ['sh', ['-c', `"$@" > ${options.stdoutTo}`, 'sh', process.execPath, haBin, ...argv]] : [process.execPath, [haBin, ...argv]]
    const child = spawn(out[0] as string, out[1] as string[], {env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const bound = setTimeout(() => child.kill('SIGKILL'), 60_000)
    const term = options.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGTERM'), options.killAfterMs)
    child.on('close', (code) => {
      clearTimeout(bound)
      if (term) clearTimeout(term)
      resolve({code, stderr, stdout})
    })
  })
}

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({length: limit}, async () => {
    while (next < items.length) await fn(items[next++])
  }))
}

/** One envelope and nothing else on stdout (a failover's JSON-lines events would come before it). */
function oneEnvelope(where: string, r: Run): {error?: {name: string}; status: number} {
  let envelope
  try {
    envelope = JSON.parse(r.stdout)
  } catch {
    assert.fail(`${where}: stdout is not one JSON envelope: ${JSON.stringify(r.stdout.slice(0, 300))} (stderr ${JSON.stringify(r.stderr.slice(0, 300))})`)
  }

  assert.equal(envelope.status, r.code, `${where}: the envelope's status is the exit code`)
  assert.equal(envelope.schema_version, 1, where)
  return envelope
}

function sane(where: string, r: Run): void {
  assert.doesNotMatch(r.stdout + r.stderr, stackTrace, `${where}: a stack trace`)
  assert.ok(r.code !== null && documented.has(r.code), `${where}: exit ${r.code} is not in the documented table`)
}

describe('every command under --json, under each failure class', {skip: missingPrerequisite(['root'])}, () => {
  let dir: string
  let unreachable: string
  let silent: string
  let broken: string
  const held: Socket[] = []
  const server = createServer((s) => held.push(s))

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ha-json-classes-'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const key = join(dir, 'id')
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
    writeFileSync(join(dir, 'known_hosts'), '')
    for (const n of ['primary', 'secondary']) makeControllerRoot(join(dir, n), {hostname: `ctl-${n}`})
    mkdirSync(join(dir, 'secondary/var/opt/sun/xvm/.ha/backups'), {recursive: true})
    const config = (name: string, port: number) => {
      const node = (n: string) =>
        `  ${n}:\n    hostname: ctl-${n}\n    root: ${join(dir, n)}\n    ssh:\n      host: 127.0.0.1\n      port: ${port}\n      identity_file: ${key}\n      known_hosts: ${join(dir, 'known_hosts')}\n      connect_timeout: 20s\n`
      const path = join(dir, name)
      writeFileSync(path, `data_dir: /var/opt/sun/xvm\nnodes:\n${node('primary')}${node('secondary')}storage:\n  kind: none\nservices:\n  start: [/bin/true]\n  stop: [/bin/true]\n  status: [/bin/true]\n`)
      return path
    }

    unreachable = config('unreachable.yaml', closedPort())
    silent = config('silent.yaml', (server.address() as {port: number}).port)
    broken = join(dir, 'broken.yaml')
    writeFileSync(broken, 'data_dir: /var/opt/sun/xvm\nnodes: [primary\n')
  })
  after(() => {
    for (const s of held) s.destroy()
    server.close()
    rmSync(dir, {force: true, recursive: true})
  })

  test('the table of commands is complete', () => {
    assert.deepEqual(commands, Object.keys(argsFor).sort(), 'a command was added or removed: give it its arguments in argsFor')
  })

  test('nodes that do not answer ssh (a closed port)', async () => {
    await pool(commands, 4, async (c) => {
      const where = `ha ${c} (unreachable)`
      const r = await runHa([...c.split(' '), ...argsFor[c], '--json', '--config', unreachable])
      sane(where, r)
      oneEnvelope(where, r)
    })
  })

  test('a config that does not parse: exit 2, ConfigError, for every command that reads one', async () => {
    await pool(commands, 4, async (c) => {
      const where = `ha ${c} (broken config)`
      const r = await runHa([...c.split(' '), ...argsFor[c], '--json', '--config', broken])
      sane(where, r)
      const envelope = oneEnvelope(where, r)
      if (configless.has(c)) return
      assert.equal(r.code, 2, `${where}: ${r.stdout}`)
      assert.equal(envelope.error?.name, 'ConfigError', where)
    })
  })

  test('a flag without its value: exit 2, UsageError', async () => {
    await pool(commands, 4, async (c) => {
      const where = `ha ${c} --config (no value)`
      const r = await runHa([...c.split(' '), ...argsFor[c], '--json', '--config'])
      sane(where, r)
      const envelope = oneEnvelope(where, r)
      assert.equal(r.code, 2, where)
      assert.equal(envelope.error?.name, 'UsageError', where)
    })
  })

  test('stdout on a full disk: one line on stderr, never exit 0', async () => {
    await pool(commands, 4, async (c) => {
      const where = `ha ${c} > /dev/full`
      const r = await runHa([...c.split(' '), ...argsFor[c], '--json', '--config', unreachable], {stdoutTo: '/dev/full'})
      sane(where, r)
      assert.notEqual(r.code, 0, where)
      assert.match(r.stderr, /^ha: cannot write to stdout: ENOSPC: no space left on device; the output is incomplete$/m, `${where}: exit ${r.code}, stderr ${JSON.stringify(r.stderr)}`)
    })
  })

  test('SIGTERM while it waits for a node that accepts and never answers: 143, or the outcome it had already reached', async () => {
    const stopped: string[] = []
    const codes: string[] = []
    await pool(commands, 4, async (c) => {
      const where = `ha ${c} (SIGTERM)`
      const r = await runHa([...c.split(' '), ...argsFor[c], '--json', '--config', silent], {killAfterMs: 2500})
      sane(where, r)
      const envelope = oneEnvelope(where, r)
      codes.push(`${c}: ${r.code}${r.code === 143 ? "" : ` (${JSON.parse(r.stdout).error?.message ?? "ok"})`}`)
      if (r.code === 143) {
        stopped.push(c)
        assert.equal(envelope.error?.name, 'InterruptedError', where)
      }
    })
    // The commands that talk to the nodes were still waiting when the signal came.
    for (const c of ['check', 'status', 'failover']) assert.ok(stopped.includes(c), `ha ${c} was stopped by SIGTERM (exit codes: ${codes.join(', ')})`)
  })
})

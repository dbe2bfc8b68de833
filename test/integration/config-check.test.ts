import assert from 'node:assert/strict'
import {once} from 'node:events'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {createServer, type AddressInfo} from 'node:net'
import {join} from 'node:path'
import {test} from 'node:test'

import {ha, repoRoot, tempDir} from '../helpers/cli.js'

/**
 * `ha config check` as an admin uses it before the first backup: a file validated on this machine
 * alone, errors as file:line: field with the installed example's absolute path.
 */
const example = join(repoRoot, 'templates/ha.example.yaml')

test('the installed example is valid, and checking it contacts no node', async (t) => {
  // Both nodes "reachable" on a loopback port that counts connections: the check must make none.
  let connections = 0
  const server = createServer((socket) => {
    connections++
    socket.destroy()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => server.close())
  const port = (server.address() as AddressInfo).port
  const dir = tempDir(t)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, readFileSync(example, 'utf8').replaceAll(/host: 198\.18\.0\.\d/g, 'host: 127.0.0.1').replace('port: 22', `port: ${port}`))
  const r = ha(['config', 'check', '--config', config])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, new RegExp(`^valid: ${config}`, 'm'))
  assert.match(r.stdout, new RegExp(`primary +ctl-a, reached ssh root@127\\.0\\.0\\.1:${port}`))
  assert.match(r.stdout, /backups in \/var\/opt\/sun\/xvm\/\.ha\/backups \(builtin:opscenter, \d+ entries\)/)
  assert.equal(connections, 0, 'no node was contacted')

  const json = ha(['config', 'check', '--config', example, '--json']).json!
  assert.equal(json.status, 0)
  assert.equal(json.result.valid, true)
  assert.equal(json.result.example, example)
})

test('a bad file exits 2 naming every problem as file:line: field and the example by absolute path, and nothing is written', (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'ha.yaml')
  const text = readFileSync(example, 'utf8').replace('198.18.1.10/24', '999.18.1.10/99').replace('dir: .ha/backups', 'dir: /var/backups')
  writeFileSync(config, text)
  const r = ha(['config', 'check', '--config', config])
  assert.equal(r.status, 2)
  const lines = text.split('\n')
  const ipLine = lines.findIndex((l) => l.includes('999.18.1.10/99')) + 1
  const dirLine = lines.findIndex((l) => l.includes('dir: /var/backups')) + 1
  assert.match(r.stderr, new RegExp(`${config}:${ipLine}: service_ips\\.0\\.address: "999\\.18\\.1\\.10/99": 999 is not an octet`))
  assert.match(r.stderr, new RegExp(`${config}:${dirLine}: backup\\.dir: must be relative to data_dir`))
  assert.match(r.stderr, new RegExp(`→ fix ${config}; ${example} documents every key`))
  assert.ok(existsSync(example))
  assert.equal(readFileSync(config, 'utf8'), text)
})

test('a missing file and a missing backup manifest are named, with what to do', (t) => {
  const dir = tempDir(t)
  const missing = ha(['config', 'check', '--config', join(dir, 'nope.yaml')])
  assert.equal(missing.status, 2)
  assert.match(missing.stderr, new RegExp(`cannot read config ${dir}/nope\\.yaml: ENOENT`))
  assert.match(missing.stderr, new RegExp(`${example} documents every key \\(copy it to start\\)`))

  const config = join(dir, 'ha.yaml')
  writeFileSync(config, readFileSync(example, 'utf8').replace('manifest: builtin:opscenter', `manifest: ${dir}/manifest.yaml`))
  const r = ha(['config', 'check', '--config', config])
  assert.equal(r.status, 2)
  assert.match(r.stderr, new RegExp(`cannot read backup manifest ${dir}/manifest\\.yaml: ENOENT`))
})

test('ssh.client: openssh is accepted and said; any other client is refused naming the line and the choices', (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, readFileSync(example, 'utf8').replace('client: ssh2', 'client: openssh'))
  const ok = ha(['config', 'check', '--config', config])
  assert.equal(ok.status, 0, ok.stderr)
  assert.match(ok.stdout, /primary +ctl-a, reached ssh root@198\.18\.0\.2:22 \(system ssh: ~\/\.ssh\/config and \/etc\/ssh\/ssh_config apply\)/)
  assert.match(ok.stdout, /secondary +ctl-b, reached ssh root@198\.18\.0\.3:22\n/)
  const text = readFileSync(example, 'utf8').replace('client: ssh2', 'client: putty')
  writeFileSync(config, text)
  const bad = ha(['config', 'check', '--config', config])
  assert.equal(bad.status, 2)
  const line = text.split('\n').findIndex((l) => l.includes('client: putty')) + 1
  assert.match(bad.stderr, new RegExp(`${config}:${line}: nodes\\.primary\\.ssh\\.client: .*'ssh2' \\| 'openssh'`))
})

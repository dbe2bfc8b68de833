import assert from 'node:assert/strict'
import {createServer, type Socket} from 'node:net'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {parseConfig} from '../../src/config/load.js'
import {SshConnectError} from '../../src/hosts/ssh-host.js'
import {FailoverNodes} from '../../src/pair/nodes.js'
import {tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey} from '../helpers/sshd.js'

/**
 * A dead active node costs a failover one connect timeout per attempt. Once the admin confirmed
 * it fenced and it was found silent, the run asks it no more; before the confirmation, and for
 * a silence found before it, it is asked as before. The "node" is a listener on loopback that
 * takes each connection and never says a word (a hung or cut-off host: ssh's handshake times
 * out), counting the attempts. (ssh-keygen, from OpenSSH, makes the client's key.)
 */
const skip = missingPrerequisite(['sshd'])

async function silentNode(t: {after: (fn: () => Promise<void> | void) => void}): Promise<{attempts: () => number; port: number}> {
  const sockets: Socket[] = []
  const server = createServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return {attempts: () => sockets.length, port: (server.address() as {port: number}).port}
}

function pair(dir: string, port: number) {
  const key = join(dir, 'id')
  makeKey(key)
  return parseConfig(
    `data_dir: /var/opt/sun/xvm
nodes:
  primary:
    hostname: ctl-a
    ssh:
      host: 127.0.0.1
      port: ${port}
      user: root
      identity_file: ${key}
      known_hosts: ${join(dir, 'known_hosts')}
      connect_timeout: 1s
  secondary:
    hostname: ctl-b
storage:
  kind: none
`,
    'ha.yaml',
  )
}

const silence = (error: unknown) => error instanceof SshConnectError && error.kind === 'timeout'

describe('FailoverNodes: a node confirmed fenced and found silent is not waited on again in the run', {skip}, () => {
  test('not confirmed fenced: every question is a new attempt', async (t) => {
    const node = await silentNode(t)
    const nodes = new FailoverNodes(pair(tempDir(t), node.port))
    assert.equal(await nodes.reachable('primary'), false)
    assert.equal(await nodes.reachable('primary'), false)
    assert.equal(node.attempts(), 2)
    assert.equal(nodes.foundSilent('primary'), undefined)
  })

  test('confirmed first (--fenced): found silent once, then every question of the run is answered by that finding', async (t) => {
    const node = await silentNode(t)
    const nodes = new FailoverNodes(pair(tempDir(t), node.port))
    nodes.confirmFenced('primary')
    assert.equal(await nodes.reachable('primary'), false)
    assert.equal(await nodes.reachable('primary'), false)
    await assert.rejects(nodes.get('primary'), silence)
    await assert.rejects(nodes.fresh('primary'), silence)
    assert.equal(node.attempts(), 1)
    assert.ok(silence(nodes.foundSilent('primary')))
    assert.equal(nodes.connected('primary'), false)
  })

  test('found silent before the confirmation (typed after the plan was shown): asked once more, then no more', async (t) => {
    const node = await silentNode(t)
    const nodes = new FailoverNodes(pair(tempDir(t), node.port))
    assert.equal(await nodes.reachable('primary'), false)
    nodes.confirmFenced('primary')
    assert.equal(nodes.foundSilent('primary'), undefined)
    assert.equal(await nodes.reachable('primary'), false)
    assert.equal(await nodes.reachable('primary'), false)
    await assert.rejects(nodes.fresh('primary'), silence)
    assert.equal(node.attempts(), 2)
    // Confirmed again (the journal of the run says so too): the finding stands.
    nodes.confirmFenced('primary')
    assert.equal(await nodes.reachable('primary'), false)
    assert.equal(node.attempts(), 2)
  })
})

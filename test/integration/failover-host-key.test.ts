import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {parseConfig} from '../../src/config/load.js'
import {FailoverNodes} from '../../src/pair/nodes.js'
import {fingerprint} from '../../src/hosts/ssh-key-blob.js'
import {tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd} from '../helpers/sshd.js'

/**
 * After the takeover the node must present the host key restored from the backup. A real OpenSSH
 * sshd on loopback plays the node taking over: whether known_hosts still vouches for the key it
 * presents (its own old key) or not (another machine's key), the connection is refused the same
 * way, naming the node, the key presented and the keys expected.
 */
const skip = missingPrerequisite(['sshd'])
const fp = (line: string) => fingerprint(Buffer.from(line.split(' ')[1], 'base64'))

for (const client of ['ssh2', 'openssh'] as const) {
  test(`${client}: a node taking over that presents another key than the restored one is refused, by name and fingerprints, however known_hosts stands`, {skip}, async (t) => {
    const dir = tempDir(t, 'ha-takeover-key-')
    const sshd = await startSshd({t})
    const knownHosts = join(dir, 'known_hosts')
    const config = parseConfig(
      `data_dir: /var/opt/sun/xvm
nodes:
  primary:
    hostname: ctl-a
  secondary:
    hostname: ctl-b
    ssh:
      host: 127.0.0.1
      port: ${sshd.port}
      user: root
      identity_file: ${sshd.clientKey}
      known_hosts: ${knownHosts}
      connect_timeout: 5s
      client: ${client}
storage:
  kind: none
`,
      'ha.yaml',
    )
    // The primary's key, saved by the backup: what the secondary must present after the takeover.
    const restored = makeKey(join(dir, 'primary-key'))
    const presented = fp(sshd.hostKeyLine)
    const expectRefusal = async (nodes: FailoverNodes) => {
      await assert.rejects(nodes.get('secondary'), (error: Error & {actions?: string[]; exitCode?: number}) => {
        assert.equal(error.message, `secondary (root@127.0.0.1:${sshd.port}) presents host key ${presented}, but after the takeover it must present the key restored from the backup (${fp(restored)}); refused`)
        assert.equal(error.exitCode, 1)
        assert.match(error.actions!.join('\n'), /ha failover --resume/)
        return true
      })
      // A refused key is no answer to "is it reachable?": it is the same refusal, never "down".
      await assert.rejects(nodes.reachable('secondary'), /presents host key .* refused/)
    }

    // known_hosts still lists the node's own old key (and the restored one, as the failover appends it).
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n[127.0.0.1]:${sshd.port} ${restored}\n`)
    const vouched = new FailoverNodes(config)
    vouched.expectHostKeys('secondary', [fp(restored)])
    await expectRefusal(vouched)

    // known_hosts lists only the restored key: ssh's own check refuses first; said the same way.
    writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${restored}\n`)
    const changed = new FailoverNodes(config)
    changed.expectHostKeys('secondary', [fp(restored)])
    await expectRefusal(changed)

    // Before the takeover nothing is expected: the node's own key, listed, is fine.
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`)
    const plain = new FailoverNodes(config)
    assert.equal(await plain.reachable('secondary'), true)
    await plain.closeAll()
  })
}

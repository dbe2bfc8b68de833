import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'

import {parse, stringify} from 'yaml'

import {nodePaths} from '../../src/lab/lab.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {failoverLab} from './failover-helpers.js'
import {labDirFor} from './shared-lab.js'

/**
 * failover.mode: service between the lab's controllers (issue 17, item 1): only the service moves.
 * Judged from outside: the service answers from the other node, which keeps its own name, host key
 * and boot (no reboot); the data is intact; the failback (rejoin, then a failover the other way)
 * gives nothing back because nothing was taken.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('service-mode')
const journalDir = `${labDir}-journal`
const {assertRanAsPlanned, assertServes, dataDirFacts, down, haAdmin, lab, ssh, up} = failoverLab(labDir, journalDir)
const bootId = (node: 'primary' | 'secondary') => readFileSync(nodePaths(labDir, node).bootId, 'utf8').trim()

describe('ha failover in service mode between the lab\'s controllers', {skip}, () => {
  let config = ''
  before(async () => {
    await up()
    const yaml = parse(readFileSync(lab.config, 'utf8'))
    yaml.failover.mode = 'service'
    config = `${labDir}/ha-service-mode.yaml`
    writeFileSync(config, stringify(yaml), {mode: 0o644})
  })
  after(down)

  it('moves storage, service IP, services and saved state, and nothing of the nodes\' identity; back again the same way', () => {
    const dataBefore = dataDirFacts('primary')
    const names = {primary: ssh('primary', 'hostname').stdout.trim(), secondary: ssh('secondary', 'hostname').stdout.trim()}
    const keys = {primary: ssh('primary', 'cat /etc/ssh/ssh_host_ed25519_key.pub').stdout, secondary: ssh('secondary', 'cat /etc/ssh/ssh_host_ed25519_key.pub').stdout}
    for (const [from, to] of [['primary', 'secondary'], ['secondary', 'primary']] as const) {
      const boots = {primary: bootId('primary'), secondary: bootId('secondary')}
      if (from === 'secondary') {
        // The old active node proves it is a clean standby; there is no identity to give back.
        const rejoin = haAdmin(['rejoin', 'primary', '--json'], {}, config)
        assert.equal(rejoin.status, 0, `${rejoin.stdout}\n${rejoin.stderr}`)
        assert.ok(!rejoin.events.some((e) => e.step === 'give-back-identity'), 'no give-back in service mode')
      }

      const plan = haAdmin(['failover', '--plan', '--json'], {}, config)
      assert.equal(plan.status, 0, plan.stderr)
      assert.equal(plan.envelope!.result.from, from)
      const run = haAdmin(['failover', '--yes', '--json'], {}, config)
      assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`)
      assertRanAsPlanned(plan.envelope!.result.plan, run)
      assert.ok(!run.envelope!.result.ran.some((r: {action: string}) => /--takeover|\/sbin\/reboot/.test(r.action)), 'no identity restore, no reboot')
      assertServes(to)
      assert.equal(dataDirFacts(to), dataBefore, 'content and owners by name are as before')
      for (const node of ['primary', 'secondary'] as const) {
        assert.equal(ssh(node, 'hostname').stdout.trim(), names[node], `${node} keeps its own name`)
        assert.equal(ssh(node, 'cat /etc/ssh/ssh_host_ed25519_key.pub').stdout, keys[node], `${node} keeps its own host key`)
        assert.equal(bootId(node), boots[node], `${node} was not rebooted`)
      }

      // The client sees the node that now serves, by its own name.
      assert.equal(ssh(to, 'hostname').stdout.trim(), names[to])
      const status = haAdmin(['status', '--json'], {}, config)
      assert.equal(status.envelope!.result.active, to)
    }
  })
})

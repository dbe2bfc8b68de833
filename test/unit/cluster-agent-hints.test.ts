import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {underCluster} from '../../src/cluster/agent-context.js'

/**
 * The agent runs the same steps as ha failover, whose hints end in "then ha failover --resume".
 * Under Pacemaker there is no run to resume: what Pacemaker's log tells the admin is the cluster's
 * way to try again, and every other hint is left as the step said it.
 */
describe('the resource agent\'s hints in Pacemaker\'s log', () => {
  it('a hint to resume a failover becomes a cleanup of the group, which Pacemaker then starts again', () => {
    assert.equal(underCluster('look at the service log on the node, then ha failover --resume', 'ha-service'), 'look at the service log on the node, then crm_resource --cleanup --resource ha-service (Pacemaker starts it again)')
    assert.equal(underCluster('fix what it says, then ha failover --resume', 'web'), 'fix what it says, then crm_resource --cleanup --resource web (Pacemaker starts it again)')
  })

  it('hints that do not say to resume are left as they are', () => {
    for (const hint of ['read it on secondary: ha restore --dry-run --node secondary', 'ha failover --abort to put primary back into service', 'ha status']) assert.equal(underCluster(hint, 'ha-service'), hint)
  })
})

import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

// @ts-expect-error: a plain .mjs script, no types
import {fill, planText} from '../../scripts/runbook.mjs'
import {repoRoot} from '../helpers/cli.js'

// The runbook in the docs is ha failover --plan's own output on the example config, both ways.
test('docs/runbook.md and the README carry the runbook ha failover --plan prints for templates/ha.example.yaml', () => {
  const plans = {primary: planText('primary'), secondary: planText('secondary')}
  assert.match(plans.primary, /^Failover ctl-a \(primary\) → ctl-b \(secondary\)/)
  assert.match(plans.secondary, /^Failover ctl-b \(secondary\) → ctl-a \(primary\)/)
  const runbook = readFileSync(join(repoRoot, 'docs/runbook.md'), 'utf8')
  assert.equal(runbook, fill(fill(runbook, 'primary', plans.primary), 'secondary', plans.secondary), 'docs/runbook.md is stale: npm run build && node scripts/runbook.mjs')
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')
  assert.equal(readme, fill(readme, 'primary', plans.primary), 'README.md is stale: npm run build && node scripts/runbook.mjs')
  // Every step of the runbook, in order, with the commands a reader would type by hand.
  for (const step of ['preflight', 'confirm-fenced', 'final-backup', 'stop-services', 'release-ips', 'release-storage', 'acquire-storage', 'restore-takeover', 'reboot', 'take-ips', 'start-services', 'verify']) {
    assert.match(plans.primary, new RegExp(`\\d+\\. ${step} — `))
  }

  assert.match(plans.primary, /ctl-a \(primary\)\$ umount \/var\/opt\/sun\/xvm\n/)
  assert.doesNotMatch(plans.primary, /umount (-l|-f)/)
  assert.match(plans.primary, /ctl-b \(secondary\)\$ ha restore --takeover --yes --json --node secondary/)
})

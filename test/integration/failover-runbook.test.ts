import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

// @ts-expect-error: a plain .mjs script, no types
import {blocks, docFiles, fillAll, planText} from '../../scripts/runbook.mjs'
import {repoRoot} from '../helpers/cli.js'

// The runbook in the docs is ha failover --plan's own output on the example config, both ways:
// docs/runbook.md carries both directions, and any other page that carries a block (README.md or
// docs/*.md) carries it as the plan prints it too.
test('docs/runbook.md (and any page with a runbook block) carries the runbook ha failover --plan prints for templates/ha.example.yaml', () => {
  const plans = {primary: planText('primary'), secondary: planText('secondary')}
  assert.match(plans.primary, /^Failover ctl-a \(primary\) → ctl-b \(secondary\)/)
  assert.match(plans.secondary, /^Failover ctl-b \(secondary\) → ctl-a \(primary\)/)
  const files: string[] = docFiles()
  assert.ok(files.includes('README.md') && files.includes('docs/runbook.md'), files.join(' '))
  const runbook = readFileSync(join(repoRoot, 'docs/runbook.md'), 'utf8')
  assert.deepEqual(blocks(runbook), ['primary', 'secondary'], 'docs/runbook.md has the failover and the failback')
  for (const file of files) {
    const text = readFileSync(join(repoRoot, file), 'utf8')
    assert.equal(text, fillAll(text, plans), `${file} is stale: npm run build && node scripts/runbook.mjs`)
  }

  // Every step of the runbook, in order, with the commands a reader would type by hand.
  for (const step of ['preflight', 'confirm-fenced', 'final-backup', 'stop-services', 'release-ips', 'release-storage', 'acquire-storage', 'restore-takeover', 'hold-ips', 'reboot', 'take-ips', 'start-services', 'verify']) {
    assert.match(plans.primary, new RegExp(`\\d+\\. ${step} — `))
  }

  assert.match(plans.primary, /ctl-a \(primary\)\$ umount \/var\/opt\/sun\/xvm\n/)
  assert.doesNotMatch(plans.primary, /umount (-l|-f)/)
  assert.match(plans.primary, /ctl-b \(secondary\)\$ ha restore --takeover --yes --json --node secondary/)
})

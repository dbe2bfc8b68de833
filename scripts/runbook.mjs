#!/usr/bin/env node
// Writes the runbook blocks of docs/runbook.md and README.md from `ha failover --plan` on
// templates/ha.example.yaml (the same step objects that run). test/integration/failover-runbook.test.ts
// fails when they differ: after changing a step, run `npm run build && node scripts/runbook.mjs`.
import {spawnSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')

export function planText(from) {
  const r = spawnSync(process.execPath, [join(top, 'bin/run.js'), 'failover', '--plan', '--from', from, '--config', join(top, 'templates/ha.example.yaml')], {
    encoding: 'utf8',
    env: {...process.env, NO_COLOR: '1'},
  })
  if (r.status !== 0) throw new Error(`ha failover --plan --from ${from} failed: ${r.stderr}`)
  return r.stdout.trimEnd()
}

export function fill(text, from, plan) {
  const open = `<!-- runbook:${from} -->`
  const close = '<!-- /runbook -->'
  const start = text.indexOf(open)
  if (start === -1) throw new Error(`no ${open} marker`)
  const end = text.indexOf(close, start)
  return `${text.slice(0, start + open.length)}\n\`\`\`text\n${plan}\n\`\`\`\n${text.slice(end)}`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const plans = {primary: planText('primary'), secondary: planText('secondary')}
  const runbook = join(top, 'docs/runbook.md')
  writeFileSync(runbook, fill(fill(readFileSync(runbook, 'utf8'), 'primary', plans.primary), 'secondary', plans.secondary))
  const readme = join(top, 'README.md')
  writeFileSync(readme, fill(readFileSync(readme, 'utf8'), 'primary', plans.primary))
}

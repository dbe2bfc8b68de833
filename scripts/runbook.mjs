#!/usr/bin/env node
// Writes the runbook blocks (`<!-- runbook:primary -->` or `<!-- runbook:secondary -->` up to
// `<!-- /runbook -->`) of README.md and every docs/*.md page from `ha failover --plan` on
// templates/ha.example.yaml (the same step objects that run). test/integration/failover-runbook.test.ts
// fails when any of them differs: after changing a step, run `npm run build && node scripts/runbook.mjs`.
import {spawnSync} from 'node:child_process'
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
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

const OPEN = /<!-- runbook:(primary|secondary) -->/g
const CLOSE = '<!-- /runbook -->'

/** The directions of the runbook blocks in a text, in order. */
export const blocks = (text) => [...text.matchAll(OPEN)].map((m) => m[1])

/** The text with every runbook block rewritten from its plan (plans: {primary, secondary}). */
export function fillAll(text, plans) {
  let out = ''
  let at = 0
  for (const m of text.matchAll(OPEN)) {
    if (m.index < at) throw new Error(`<!-- runbook:${m[1]} --> inside another block`)
    const end = text.indexOf(CLOSE, m.index)
    if (end === -1) throw new Error(`<!-- runbook:${m[1]} --> has no ${CLOSE}`)
    out += `${text.slice(at, m.index + m[0].length)}\n\`\`\`text\n${plans[m[1]]}\n\`\`\`\n`
    at = end
  }

  return out + text.slice(at)
}

/** README.md and the docs pages, relative to the top of the repository. */
export const docFiles = () => ['README.md', ...readdirSync(join(top, 'docs')).filter((n) => n.endsWith('.md')).sort().map((n) => `docs/${n}`)]

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const plans = {primary: planText('primary'), secondary: planText('secondary')}
  for (const file of docFiles()) {
    const text = readFileSync(join(top, file), 'utf8')
    const filled = fillAll(text, plans)
    if (filled !== text) {
      writeFileSync(join(top, file), filled)
      console.log(`wrote ${file}`)
    }
  }
}

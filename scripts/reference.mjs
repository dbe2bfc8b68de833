#!/usr/bin/env node
// The command reference, from the commands' own metadata (oclif.manifest.json, written by
// `npm run build`): scripts/build-man.mjs renders it as man/ha.1, and the docs pages carry it as
// markdown between `<!-- reference:ID -->` and `<!-- /reference -->` (ID is a command, e.g.
// `backup list`, or `global flags`), written by this script. test/integration/docs-reference.test.ts
// fails when a block differs from the manifest or a command has no block: after changing a
// command's flags, summary, description or examples, run `npm run build && node scripts/reference.mjs`.
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const here = join(dirname(fileURLToPath(import.meta.url)), '..')

/** The id of the block that lists the flags every command takes. */
export const GLOBAL_FLAGS = 'global flags'

/** Every visible command, sorted by id, with its own flags apart from the global ones. */
export function commandReference(top = here) {
  const pjson = JSON.parse(readFileSync(join(top, 'package.json'), 'utf8'))
  const manifest = JSON.parse(readFileSync(join(top, 'oclif.manifest.json'), 'utf8'))
  const bin = pjson.oclif.bin
  const sep = pjson.oclif.topicSeparator ?? ':'
  const fill = (text) => String(text ?? '').replaceAll('<%= config.bin %>', bin)
  const globalFlags = new Map()
  const commands = Object.values(manifest.commands)
    .filter((c) => !c.hidden)
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((c) => {
      for (const f of Object.values(c.flags)) if (f.helpGroup === 'GLOBAL') globalFlags.set(f.name, f)
      return {
        args: Object.values(c.args ?? {}),
        description: c.description && c.description !== c.summary ? fill(c.description) : '',
        examples: (c.examples ?? []).map((e) => (typeof e === 'string' ? {command: fill(e)} : {command: fill(e.command), description: e.description ? fill(e.description) : undefined})),
        flags: Object.values(c.flags)
          .filter((f) => !f.hidden && f.helpGroup !== 'GLOBAL')
          .sort((a, b) => a.name.localeCompare(b.name)),
        globalFlags: Object.values(c.flags).filter((f) => !f.hidden && f.helpGroup === 'GLOBAL').map((f) => f.name).sort(),
        id: c.id.replaceAll(':', sep),
        summary: fill(c.summary),
      }
    })
  return {
    bin,
    commands,
    description: pjson.description,
    globalFlags: [...globalFlags.values()].sort((a, b) => a.name.localeCompare(b.name)),
    /** Flags oclif adds to every command, not in the manifest. */
    helpAndVersion: [
      {char: 'h', description: 'show the help of the command', name: 'help', type: 'boolean'},
      {char: 'v', description: `print the version of ${bin}`, name: 'version', type: 'boolean'},
    ],
    version: pjson.version,
  }
}

/** `-q, --quiet`, `--node=primary|secondary`, `--map=VALUE`: how a flag is written, without markup. */
export function flagWords(flag) {
  const value = flag.type === 'option' ? `=${flag.options ? flag.options.join('|') : 'VALUE'}` : ''
  return {long: `--${flag.name}`, short: flag.char ? `-${flag.char}` : undefined, value}
}

/** Plain text for markdown: what would be markup is escaped, except inside `code spans`. */
function md(text) {
  const parts = String(text).split(/(`[^`\n]+`)/)
  return parts.map((p, i) => (i % 2 === 1 ? p : p.replace(/[\\*_<>[\]`]/g, (c) => `\\${c}`))).join('')
}

/** A description's paragraphs; one with indented lines (a table in the help text) stays preformatted. */
function mdParagraphs(text) {
  return String(text)
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => (/\n[ \t]/.test(p) ? `\`\`\`text\n${p}\n\`\`\`` : md(p)))
}

const mdFlag = (flag) => {
  const w = flagWords(flag)
  return `- \`${w.short ? `${w.short}, ` : ''}${w.long}${w.value}\` — ${md(flag.description ?? '')}`
}

/** The markdown of one block: a command's usage, summary, description, arguments, flags and examples. */
export function markdownBlock(ref, id) {
  if (id === GLOBAL_FLAGS) {
    return ['Accepted by every command:', '', ...[...ref.globalFlags, ...ref.helpAndVersion].map(mdFlag)].join('\n')
  }

  const c = ref.commands.find((command) => command.id === id)
  if (!c) throw new Error(`no command "${id}" in oclif.manifest.json (a stale <!-- reference:${id} --> block?)`)
  const usage = [ref.bin, c.id, ...c.args.map((a) => (a.required ? a.name.toUpperCase() : `[${a.name.toUpperCase()}]`)), c.flags.length > 0 || c.globalFlags.length > 0 ? '[FLAGS]' : ''].filter(Boolean).join(' ')
  const out = [`### \`${ref.bin} ${c.id}\``, '', md(c.summary), '', '```text', usage, '```']
  for (const p of mdParagraphs(c.description)) out.push('', p)
  const items = [
    ...c.args.map((a) => `- \`${a.name.toUpperCase()}\`${a.options ? ` (${a.options.join(', ')})` : ''} — ${md(a.description ?? '')}`),
    ...c.flags.map(mdFlag),
  ]
  if (items.length > 0) out.push('', ...items)
  if (c.globalFlags.length > 0) out.push('', `Global flags: ${c.globalFlags.map((name) => `\`--${name}\``).join(', ')} ([cli.md](cli.md#global-flags)).`)
  if (c.examples.length > 0) {
    out.push('', '```sh')
    for (const [i, e] of c.examples.entries()) {
      if (e.description) out.push(`${i > 0 ? '\n' : ''}# ${e.description}`)
      out.push(e.command)
    }

    out.push('```')
  }

  return out.join('\n')
}

const OPEN = /<!-- reference:([^>]+?) -->/g
const CLOSE = '<!-- /reference -->'

/** The ids of the blocks in a text, in order. */
export const blockIds = (text) => [...text.matchAll(OPEN)].map((m) => m[1])

/** The text with every reference block rewritten from the manifest. */
export function fillReference(text, ref) {
  let out = ''
  let at = 0
  for (const m of text.matchAll(OPEN)) {
    if (m.index < at) throw new Error(`<!-- reference:${m[1]} --> inside another block`)
    const end = text.indexOf(CLOSE, m.index)
    if (end === -1) throw new Error(`<!-- reference:${m[1]} --> has no ${CLOSE}`)
    out += `${text.slice(at, m.index + m[0].length)}\n${markdownBlock(ref, m[1])}\n`
    at = end
  }

  return out + text.slice(at)
}

/** The docs pages (docs/*.md): file, title (its first heading) and the reference blocks it holds. */
export function docPages(top = here) {
  return readdirSync(join(top, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => {
      const text = readFileSync(join(top, 'docs', name), 'utf8')
      return {file: `docs/${name}`, ids: blockIds(text), text, title: ((text.match(/^# (.+)$/m) ?? [])[1] ?? name).replaceAll('`', '')}
    })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ref = commandReference()
  for (const page of docPages()) {
    const filled = fillReference(page.text, ref)
    if (filled !== page.text) {
      writeFileSync(join(here, page.file), filled)
      console.log(`wrote ${page.file}`)
    }
  }
}

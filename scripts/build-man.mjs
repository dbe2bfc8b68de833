#!/usr/bin/env node
// Writes man/ha.1 from the commands' own metadata (oclif.manifest.json, made by `oclif manifest`
// just before) and the exit-code table in dist/core/errors.js, so the man page cannot drift from
// `ha help`. Run by `npm run build`; the page ships with the package ("man" in package.json).
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')
const pjson = JSON.parse(readFileSync(join(top, 'package.json'), 'utf8'))
const manifest = JSON.parse(readFileSync(join(top, 'oclif.manifest.json'), 'utf8'))
const {exitCodeMeaning} = await import(pathToFileURL(join(top, 'dist/core/errors.js')).href)
const bin = pjson.oclif.bin
const sep = pjson.oclif.topicSeparator ?? ':'

/**
 * Text for roff: backslashes escaped, no line may start with a control character, dashes literal,
 * and anything outside ASCII (an em dash, an arrow) as a named glyph: troff reads bytes, not UTF-8.
 */
const esc = (text) =>
  String(text)
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`)
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n')
const fill = (text) => String(text).replaceAll('<%= config.bin %>', bin)
const paragraphs = (text) =>
  fill(text)
    .split(/\n\s*\n/)
    .map((p) => esc(p.trim()))
    .filter(Boolean)
    .join('\n.PP\n')

const flagTerm = (flag) => {
  const long = `\\fB\\-\\-${esc(flag.name)}\\fR`
  const value = flag.type === 'option' ? `=\\fI${esc(flag.options ? flag.options.join('|') : 'VALUE')}\\fR` : ''
  return flag.char ? `\\fB\\-${flag.char}\\fR, ${long}${value}` : `${long}${value}`
}

const commands = Object.values(manifest.commands)
  .filter((c) => !c.hidden)
  .sort((a, b) => a.id.localeCompare(b.id))
const globalFlags = new Map()
const out = [
  `.TH HA 1 "" "${bin} ${pjson.version}" "User Commands"`,
  '.SH NAME',
  `${bin} \\- ${esc(pjson.description.charAt(0).toLowerCase() + pjson.description.slice(1))}`,
  '.SH SYNOPSIS',
  `.B ${bin}`,
  '.I command',
  '.RI [ flags ]',
  '.br',
  `.B ${bin}`,
  '.RB [ \\-h | \\-\\-help | \\-v | \\-\\-version ]',
  '.SH DESCRIPTION',
  esc(pjson.description) + '.',
  'Every command works at a terminal, from cron (\\fB\\-\\-quiet\\fR) and from scripts (\\fB\\-\\-json\\fR).',
  '.SH COMMANDS',
]
for (const c of commands) {
  const id = c.id.replaceAll(':', sep)
  out.push(`.SS "${bin} ${esc(id)}"`, paragraphs(c.summary ?? ''))
  if (c.description && c.description !== c.summary) out.push('.PP', paragraphs(c.description))
  const own = Object.values(c.flags).filter((f) => !f.hidden && f.helpGroup !== 'GLOBAL')
  for (const f of Object.values(c.flags)) if (f.helpGroup === 'GLOBAL') globalFlags.set(f.name, f)
  for (const a of Object.values(c.args ?? {})) out.push('.TP', `\\fI${esc(a.name.toUpperCase())}\\fR`, esc(a.description ?? ''))
  for (const f of own.sort((a, b) => a.name.localeCompare(b.name))) out.push('.TP', flagTerm(f), esc(f.description ?? ''))
  const examples = (c.examples ?? []).map((e) => (typeof e === 'string' ? {command: e} : e))
  if (examples.length > 0) {
    out.push('.PP', 'Examples:', '.RS', '.nf')
    for (const e of examples) {
      if (e.description) out.push(`# ${esc(fill(e.description))}`)
      out.push(esc(fill(e.command)))
    }

    out.push('.fi', '.RE')
  }
}

out.push('.SH GLOBAL FLAGS', 'Accepted by every command that reads the configuration.')
for (const f of [...globalFlags.values()].sort((a, b) => a.name.localeCompare(b.name))) out.push('.TP', flagTerm(f), esc(f.description ?? ''))
out.push('.TP', '\\fB\\-h\\fR, \\fB\\-\\-help\\fR', 'show the help of the command', '.TP', '\\fB\\-v\\fR, \\fB\\-\\-version\\fR', `print the version of ${bin}`)
out.push('.SH EXIT STATUS')
for (const [code, meaning] of Object.entries(exitCodeMeaning)) out.push('.TP', `.B ${code}`, esc(meaning))
out.push(
  '.SH ENVIRONMENT',
  '.TP',
  '.B HA_CONFIG',
  'the configuration file when \\fB\\-\\-config\\fR is not given',
  '.TP',
  '.B NO_COLOR',
  'any non\\-empty value turns colour off (as does \\fBTERM=dumb\\fR)',
  '.TP',
  '.B DEBUG',
  '\\fBha:backup\\fR, \\fBha:ssh\\fR: timings of a backup\\(aqs phases; the SSH conversation',
  '.SH FILES',
  '.TP',
  '.I /etc/ha/ha.yaml',
  'the configuration (see \\fBha config check\\fR); the package\\(aqs \\fItemplates/ha.example.yaml\\fR documents every key',
  '.TP',
  '.I /etc/cron.d/ha\\-backup',
  'the hourly backup on both nodes',
  '.SH SEE ALSO',
  '.BR ssh (1),',
  '.BR tar (1),',
  '.BR crontab (5)',
)
mkdirSync(join(top, 'man'), {recursive: true})
writeFileSync(join(top, 'man/ha.1'), `${out.join('\n')}\n`)

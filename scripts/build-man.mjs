#!/usr/bin/env node
// Writes man/ha.1 from the commands' own metadata (oclif.manifest.json, made by `oclif manifest`
// just before) and the exit-code table in dist/core/errors.js, so the man page cannot drift from
// `ha help`. Run by `npm run build`; the page ships with the package ("man" in package.json).
// The docs pages carry the same command reference (scripts/reference.mjs reads the manifest for
// both); each command's entry here names the docs page that holds it, and SEE ALSO lists them all.
import {mkdirSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {commandReference, docPages, flagWords} from './reference.mjs'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')
const ref = commandReference(top)
const pages = docPages(top)
const {exitCodeMeaning} = await import(pathToFileURL(join(top, 'dist/core/errors.js')).href)
const {bin} = ref

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
const paragraphs = (text) =>
  String(text)
    .split(/\n\s*\n/)
    .map((p) => esc(p.trim()))
    .filter(Boolean)
    .join('\n.PP\n')

const flagTerm = (flag) => {
  const w = flagWords(flag)
  const long = `\\fB${esc(w.long)}\\fR`
  const value = w.value ? `=\\fI${esc(w.value.slice(1))}\\fR` : ''
  return w.short ? `\\fB${esc(w.short)}\\fR, ${long}${value}` : `${long}${value}`
}

/** The docs page holding a command's reference block (every command has one: a test says so). */
const pageOf = (id) => pages.find((p) => p.ids.includes(id))
const out = [
  `.TH HA 1 "" "${bin} ${ref.version}" "User Commands"`,
  '.SH NAME',
  `${bin} \\- ${esc(ref.description.charAt(0).toLowerCase() + ref.description.slice(1))}`,
  '.SH SYNOPSIS',
  `.B ${bin}`,
  '.I command',
  '.RI [ flags ]',
  '.br',
  `.B ${bin}`,
  '.RB [ \\-h | \\-\\-help | \\-v | \\-\\-version ]',
  '.SH DESCRIPTION',
  esc(ref.description) + '.',
  'Every command works at a terminal, from cron (\\fB\\-\\-quiet\\fR) and from scripts (\\fB\\-\\-json\\fR).',
  '.PP',
  'This page is the reference of every command and flag. What the commands do in depth, and the',
  'topics around them, are in the \\fIdocs/\\fR folder of the ha source, one page per command or',
  'topic (listed under SEE ALSO); each command\\(aqs entry below names its page, which ends with the',
  'same reference, written from the same command metadata.',
  '.SH COMMANDS',
]
for (const c of ref.commands) {
  out.push(`.SS "${bin} ${esc(c.id)}"`, paragraphs(c.summary))
  if (c.description) out.push('.PP', paragraphs(c.description))
  for (const a of c.args) out.push('.TP', `\\fI${esc(a.name.toUpperCase())}\\fR`, esc(a.description ?? ''))
  for (const f of c.flags) out.push('.TP', flagTerm(f), esc(f.description ?? ''))
  if (c.examples.length > 0) {
    out.push('.PP', 'Examples:', '.RS', '.nf')
    for (const e of c.examples) {
      if (e.description) out.push(`# ${esc(e.description)}`)
      out.push(esc(e.command))
    }

    out.push('.fi', '.RE')
  }

  const page = pageOf(c.id)
  if (page) out.push('.PP', `More: \\fI${esc(page.file)}\\fR (${esc(page.title)}).`)
}

out.push('.SH GLOBAL FLAGS', 'Accepted by every command that reads the configuration.')
for (const f of [...ref.globalFlags, ...ref.helpAndVersion]) out.push('.TP', flagTerm(f), esc(f.description ?? ''))
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
  '.TP',
  '.B HA_OCF',
  '\\fB1\\fR only where ha\\(aqs resource agent runs ha: \\fBha restore\\fR then runs under \\fBcluster.manager: pacemaker\\fR, which refuses it otherwise (docs/cluster\\-guided.md)',
  '.SH FILES',
  '.TP',
  '.I /etc/ha/ha.yaml',
  'the configuration (see \\fBha config check\\fR); the package\\(aqs \\fItemplates/ha.example.yaml\\fR documents every key',
  '.TP',
  '.I /etc/cron.d/ha\\-backup',
  'the hourly backup on both nodes (\\fBha schedule install\\fR; with \\fB\\-\\-systemd\\fR, \\fIha\\-backup.service\\fR and \\fIha\\-backup.timer\\fR in \\fI/etc/systemd/system\\fR)',
  '.TP',
  '.I <data_dir>/.ha/',
  'ha\\(aqs own folder on the shared storage: \\fIbackups/\\fR, \\fIundo/\\fR, \\fIstaging/\\fR, the lock \\fIha.lock\\fR and \\fIunlock.log\\fR, the epoch \\fIepoch.json\\fR, the failover journals in \\fIfailover/\\fR (docs/own\\-folders.md, docs/unlock.md, docs/failover.md)',
  '.TP',
  '.I /var/lib/ha/',
  'on each node, the epoch noted there (\\fIepoch.json\\fR) and the node\\(aqs own identity kept by a takeover onto it (\\fIstandby\\-identity/\\fR); where \\fBha failover\\fR runs, its journals (\\fIfailover/<run>.jsonl\\fR; \\fB$HA_FAILOVER_DIR\\fR moves them) (docs/runbook.md, docs/failover.md)',
  '.SH SEE ALSO',
  'In the ha source, \\fIREADME.md\\fR (what ha is, and a tour of backup, check and failover in the lab) and the \\fIdocs/\\fR pages:',
)
for (const page of pages) out.push('.TP', `.I ${esc(page.file)}`, esc(page.title))
out.push(
  '.PP',
  '.BR ssh (1),',
  '.BR tar (1),',
  '.BR crontab (5)',
)
mkdirSync(join(top, 'man'), {recursive: true})
writeFileSync(join(top, 'man/ha.1'), `${out.join('\n')}\n`)

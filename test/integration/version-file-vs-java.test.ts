import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {parseProperties, PropertiesSyntaxError, readVersionProperty} from '../../src/facts/version-file.js'
import {seededRandom} from '../helpers/seeded-random.js'

/**
 * Differential test: thousands of generated .properties files, each loaded by Java's own
 * `Properties.load(InputStream)` (one JVM for all of them) and by ha's parser, which must agree
 * on every key and value, and on which files Java refuses. javac/java come from the Debian JDK
 * that scripts/ensure-deps.mjs installs; a missing JDK is a failure, not a skip.
 */
const seed = Number(process.env.HA_PROPS_SEED ?? 20_261_129)
const count = Number(process.env.HA_PROPS_COUNT ?? 4000)

// For each file named on stdin: "OK" then " hex(key):hex(value)" per property in key order, or
// "ERR <exception class>". hex is the UTF-16 code units, so no encoding stands between the two.
const javaSource = `
import java.io.*;
import java.util.*;

public class PropsDiff {
  static String hex(String s) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length(); i++) b.append(String.format("%04x", (int) s.charAt(i)));
    return b.toString();
  }

  public static void main(String[] args) throws Exception {
    BufferedReader names = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
    PrintStream out = new PrintStream(new BufferedOutputStream(System.out), false, "UTF-8");
    String name;
    while ((name = names.readLine()) != null) {
      Properties p = new Properties();
      try (InputStream in = new FileInputStream(name)) {
        p.load(in);
        TreeSet<String> keys = new TreeSet<>(p.stringPropertyNames());
        StringBuilder line = new StringBuilder("OK");
        for (String k : keys) line.append(' ').append(hex(k)).append(':').append(hex(p.getProperty(k)));
        out.println(line);
      } catch (IllegalArgumentException e) {
        out.println("ERR " + e.getClass().getName());
      }
    }
    out.flush();
  }
}
`

const hex = (s: string) => [...Array.from({length: s.length}, (_, i) => s.charCodeAt(i).toString(16).padStart(4, '0'))].join('')

function haVerdict(bytes: Buffer): string {
  try {
    const map = parseProperties(bytes)
    // Java's TreeSet orders by UTF-16 code units, as JS's default sort does.
    return ['OK', ...[...map.keys()].sort().map((k) => `${hex(k)}:${hex(map.get(k)!)}`)].join(' ')
  } catch (error) {
    if (error instanceof PropertiesSyntaxError) return 'ERR java.lang.IllegalArgumentException'
    throw error
  }
}

// The classes the issue names, as byte strings (each JS char is one byte, latin1).
const tokens: Array<[number, string[]]> = [
  [6, ['product.version', 'product\\.version', 'product\\u002eversion', 'product.versio\\\n   n', 'product.version ', 'pro\\duct.version']],
  [5, ['=', ':', ' ', '\t', '\f', '  =  ', ' : ', '\\=', '\\:', '\\ ', '==', '=:', ' \t\f']],
  [5, ['2.1.0.1234', '2.1', '0', 'GA', 'x y', '08\\:49', '1.0.0']],
  [4, ['\\t', '\\n', '\\r', '\\f', '\\\\', '\\u0041', '\\u00e9', '\\u00E9', '\\uD800', '\\uffff', '\\q', '\\"', '\\#']],
  [1, ['\\uZZZZ', '\\u12', '\\u', '\\u00g1', '\\u 123', '\\u\n0041', '\\U0041']],
  [4, ['#', '!', '\n#', '\n!', '\n  #', '# product.version=9\n', '!product.version=8\n']],
  [6, ['\n', '\r', '\r\n', '\n\r', '\\\n', '\\\r\n', '\\\r', '\n\\\n', '\\\n\\\n', '\\\\\n', '\\\\\\\n', '\n\n', '\n   \n', '\\\n   \n']],
  [3, [' ', '\t', '\f', '\v', '   ', '\u00A0', '\u0000']],
  [4, ['\u00E9', '\u00C3\u00A9', '\u00EF\u00BB\u00BF', '\u00FF', '\u00FE', '\u0080', '\u00C3']],
]
const totalWeight = tokens.reduce((s, [w]) => s + w, 0)

function generate(rand: () => number): Buffer {
  const pick = <T>(list: T[]) => list[Math.floor(rand() * list.length)]
  const bytes: number[] = []
  const push = (s: string) => {
    for (let i = 0; i < s.length; i++) bytes.push(s.charCodeAt(i))
  }

  const lines = 1 + Math.floor(rand() * 10)
  for (let l = 0; l < lines; l++) {
    if (rand() < 0.5) push(pick(['product.version=', 'product.version:', 'product.version ', '  product.version\t=\t', 'product.version']))
    const n = Math.floor(rand() * 8)
    for (let t = 0; t < n; t++) {
      if (rand() < 0.12) {
        bytes.push(Math.floor(rand() * 256))
        continue
      }

      let r = rand() * totalWeight
      for (const [w, list] of tokens) {
        if ((r -= w) < 0) {
          push(pick(list))
          break
        }
      }
    }

    if (l < lines - 1 || rand() < 0.7) push(pick(['\n', '\n', '\r\n', '\r']))
  }

  if (rand() < 0.1) push(pick(['\\', '\\\\', '\\\\\\', 'product.version=end\\']))
  return Buffer.from(bytes)
}

describe('the version file reads as Java Properties.load(InputStream) reads it', () => {
  let work: string
  let javaLines: string[] = []
  const files: Buffer[] = []

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'ha-props-java-'))
    const javac = ['/usr/bin/javac', '/usr/bin/java'].find((f) => !existsSync(f))
    assert.equal(javac, undefined, `${javac} is missing: run scripts/ensure-deps.mjs as root (it installs default-jdk-headless)`)
    const rand = seededRandom(seed)
    const names: string[] = []
    for (let i = 0; i < count; i++) {
      const bytes = generate(rand)
      const name = join(work, `f${i}.properties`)
      writeFileSync(name, bytes)
      files.push(bytes)
      names.push(name)
    }

    writeFileSync(join(work, 'PropsDiff.java'), javaSource)
    execFileSync('/usr/bin/javac', ['-d', work, join(work, 'PropsDiff.java')], {stdio: 'pipe'})
    const r = spawnSync('/usr/bin/java', ['-Xshare:auto', '-cp', work, 'PropsDiff'], {encoding: 'utf8', input: `${names.join('\n')}\n`, maxBuffer: 256 * 1024 * 1024})
    assert.equal(r.status, 0, r.stderr)
    javaLines = r.stdout.split('\n').slice(0, count)
  })

  after(() => {
    if (work) rmSync(work, {force: true, recursive: true})
  })

  test(`${count} generated files (seed ${seed}): every key, value and refusal agrees with Java`, () => {
    assert.equal(javaLines.length, count)
    const disagreements: string[] = []
    for (const [i, bytes] of files.entries()) {
      const ha = haVerdict(bytes)
      if (ha !== javaLines[i]) disagreements.push(`file ${i} ${JSON.stringify(bytes.toString('latin1'))}\n  java: ${javaLines[i]}\n  ha:   ${ha}`)
    }

    assert.equal(disagreements.length, 0, `${disagreements.length} disagreements, first:\n${disagreements.slice(0, 5).join('\n')}`)
  })

  test('the reading ha check and restore use gives Java\'s product.version, or "unreadable, line N" exactly where Java throws', () => {
    const key = hex('product.version')
    for (const [i, bytes] of files.entries()) {
      const reading = readVersionProperty(bytes, 'product.version', `f${i}`)
      if (javaLines[i].startsWith('ERR')) {
        assert.match(reading.error ?? '', new RegExp(`^f${i} is unreadable as Java reads it: line \\d+: malformed`), `file ${i}`)
        continue
      }

      const javaValue = javaLines[i].split(' ').find((pair) => pair.startsWith(`${key}:`))?.slice(key.length + 1)
      if (javaValue) assert.equal(hex(reading.version ?? ''), javaValue, `file ${i}`)
      else assert.match(reading.error ?? '', /has no "product\.version" property/, `file ${i}`)
    }
  })

  test('the generator reached each class the issue names, many times', (t) => {
    const text = files.map((b) => b.toString('latin1'))
    const has = (re: RegExp) => text.filter((t) => re.test(t)).length
    const refused = javaLines.filter((l) => l.startsWith('ERR')).length
    const withVersion = javaLines.filter((l) => l.includes(` ${hex('product.version')}:`)).length
    const classes = {
      continuationIntoComment: has(/(^|[\r\n])[ \t\f]*\\(\r\n|\r|\n)[ \t\f]*[#!]/),
      crOnly: has(/\r(?!\n)/),
      escapedSeparatorInKey: has(/\\[=: ]/),
      highBytes: has(/[\u0080-\u00FF]/),
      malformedUnicode: refused,
      nul: has(/\u0000/),
      productVersion: withVersion,
      trailingBackslashAtEof: has(/\\$/),
    }
    t.diagnostic(`files per class: ${JSON.stringify(classes)}`)
    for (const [name, n] of Object.entries(classes)) assert.ok(n >= 20, `${name}: only ${n} of ${count} files`)
  })
})

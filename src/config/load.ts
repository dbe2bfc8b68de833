import {fileURLToPath} from 'node:url'
import {isMap, LineCounter, parseDocument} from 'yaml'
import type {z, ZodIssue, ZodTypeAny} from 'zod'

import {ConfigError} from '../core/errors.js'
import {readGuardedFile} from './guarded-read.js'
import {type Config, configSchema} from './schema.js'

/** The example installed with ha (every key documented), named by absolute path in every config error. */
export const exampleConfigPath = fileURLToPath(new URL('../../templates/ha.example.yaml', import.meta.url))

export interface LoadedConfig {
  config: Config
  path: string
  /** The file as read (once): for a later message that names a field's line. */
  text: string
}

/** The most ha reads of a config: a real one is a few kilobytes; a 50 MB one took 12.7 s and 300 MB to read. */
export const configMaxBytes = 1024 * 1024

/**
 * Reads and validates the config. ha runs its argvs as root, so the file is read as sshd's
 * StrictModes reads its files (config/guarded-read.ts): refused, before a byte is parsed, when it
 * or a directory above it could be changed by anyone but root or the user running ha, or when it
 * is larger than configMaxBytes. The same loader reads /etc/ha/ha.yaml on a node (cron's ha backup,
 * the failover's ha restore, ha unlock and ha rejoin there).
 */
export async function loadConfig(path: string): Promise<LoadedConfig> {
  const text = readGuardedFile(path, {
    maxBytes: configMaxBytes,
    missingActions: [
      'pass --config <file> or set HA_CONFIG, or create /etc/ha/ha.yaml',
      `${exampleConfigPath} documents every key (copy it to start)`,
    ],
    what: 'config',
    why: 'ha runs the commands a config names as root (services and reboot_command on the nodes, failover.verify.argv where ha failover runs)',
  })
  return {config: parseConfig(text, path), path, text}
}

/** Parses and validates config text; every error names the file, the line and the field. */
export function parseConfig(text: string, path: string): Config {
  return parseYamlWith(configSchema, text, path, 'the config must be a mapping of keys (data_dir, nodes, ...)')
}

/** Any of ha's YAML files (config, backup manifests) against its schema, errors as file:line: field. */
export function parseYamlWith<S extends ZodTypeAny>(schema: S, text: string, path: string, notAMapping: string): z.output<S> {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true})
  if (doc.errors.length > 0) {
    const first = doc.errors[0]
    const line = lineCounter.linePos(first.pos[0]).line
    throw new ConfigError(`${path}:${line}: not valid YAML: ${first.message.split('\n')[0]}`, {
      actions: [`fix the YAML syntax at line ${line} of ${path}`],
    })
  }

  if (!isMap(doc.contents)) {
    throw new ConfigError(`${path}:1: ${notAMapping}`, {
      actions: [`start from ${exampleConfigPath}`],
    })
  }

  const result = schema.safeParse(doc.toJS())
  if (result.success) return result.data as z.output<S>

  const problems = result.error.issues.map((issue) => describeIssue(issue, doc, lineCounter, path))
  throw new ConfigError(problems.length === 1 ? problems[0] : `${problems.length} problems in ${path}:\n  ${problems.join('\n  ')}`, {
    actions: [`fix ${path}; ${exampleConfigPath} documents every key`],
    details: {problems},
  })
}

/** The line of a field in config text (its key's line; the parent's when it is missing). */
export function fieldLine(text: string, fieldPath: string[]): number {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true})
  return lineOf(doc, lineCounter, fieldPath)
}

function describeIssue(issue: ZodIssue, doc: ReturnType<typeof parseDocument>, lines: LineCounter, path: string): string {
  let fieldPath = issue.path.map(String)
  let message = issue.message
  if (issue.code === 'unrecognized_keys') {
    fieldPath = [...fieldPath, issue.keys[0]]
    message = `unknown key "${issue.keys[0]}"${issue.keys.length > 1 ? ` (and ${issue.keys.slice(1).join(', ')})` : ''}`
  } else if (issue.code === 'invalid_type' && issue.received === 'undefined') {
    message = 'is required but missing'
  } else if (issue.code === 'invalid_type') {
    message = `must be ${issue.expected}, not ${issue.received}`
  }

  const line = lineOf(doc, lines, fieldPath)
  const field = fieldPath.length > 0 ? fieldPath.join('.') : '(top level)'
  return `${path}:${line}: ${field}: ${message}`
}

/**
 * The line of the deepest key of `fieldPath` that exists in the file: the key itself for a wrong
 * value, the parent's key for a missing one.
 */
function lineOf(doc: ReturnType<typeof parseDocument>, lines: LineCounter, fieldPath: string[]): number {
  for (let depth = fieldPath.length; depth > 0; depth--) {
    const keys = fieldPath.slice(0, depth).map((k) => (/^\d+$/.test(k) ? Number(k) : k))
    const parent = depth === 1 ? doc.contents : doc.getIn(keys.slice(0, -1), true)
    if (isMap(parent)) {
      const pair = parent.items.find((item) => String((item.key as {value?: unknown})?.value) === String(keys.at(-1)))
      const keyRange = (pair?.key as {range?: [number, number, number]} | undefined)?.range
      if (keyRange) return lines.linePos(keyRange[0]).line
    } else {
      const range = (doc.getIn(keys, true) as {range?: [number, number, number]} | undefined)?.range
      if (range) return lines.linePos(range[0]).line
    }
  }

  return 1
}

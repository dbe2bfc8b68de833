import {randomBytes} from 'node:crypto'

import type {Probe, ProbeResult} from './host.js'
import {quoteArgv} from './quote.js'

/**
 * Many probes in one remote exec. The script is fixed text plus each probe's quoted argv. The
 * frame lines carry a per-batch nonce, and every probe's stdout and stderr are cut by exact byte
 * lengths, so no output — however hostile — can be mistaken for a frame boundary.
 * The host's clock is printed first, before any probe runs, so its arrival time bounds when it
 * was read (clock skew without a second round trip).
 */
export interface ProbeScript {
  nonce: string
  script: string
}

export function buildProbeScript(probes: Probe[]): ProbeScript {
  const nonce = randomBytes(8).toString('hex')
  // Outputs go to numbered files and are framed once at the end (one stat, one cat for the
  // whole batch): a fork per probe costs more than the probe on a busy host.
  const lines = [
    `d=$(mktemp -d) || { echo "ha: mktemp -d failed on this host" >&2; exit 125; }`,
    `trap 'rm -rf "$d"' EXIT`,
    `trap 'exit 129' HUP INT TERM`,
    `printf 'HA-CLOCK ${nonce} %s\\n' "$(date +%s.%N)"`,
    'n=0',
    `p() { n=$((n + 1)); "$@" </dev/null >"$d/$n.o" 2>"$d/$n.e"; echo $? >"$d/$n.s"; }`,
    ...probes.map((probe) => `p ${quoteArgv(probe.argv)}`),
    'st=""; i=0',
    'set --',
    'while [ "$i" -lt "$n" ]; do i=$((i + 1)); read -r s <"$d/$i.s"; st="$st $s"; set -- "$@" "$d/$i.o" "$d/$i.e"; done',
    `printf 'HA-STATUS ${nonce}%s\\n' "$st"`,
    `printf 'HA-SIZES ${nonce}\\n'`,
    '[ "$n" -eq 0 ] || stat -c %s -- "$@" || exit 125',
    `printf 'HA-DATA ${nonce}\\n'`,
    '[ "$n" -eq 0 ] || cat -- "$@" || exit 125',
    `printf 'HA-END ${nonce}\\n'`,
  ]
  return {nonce, script: lines.join('\n')}
}

export class ProbeParseError extends Error {}

export interface ParsedProbes {
  host_time_s: number
  results: ProbeResult[]
}

/** Where the clock line ends in the output, so the caller can note when it arrived. */
export function clockLineComplete(output: Buffer, nonce: string): boolean {
  const at = output.indexOf(`HA-CLOCK ${nonce} `)
  return at !== -1 && output.indexOf(0x0a, at) !== -1
}

export function parseProbeOutput(output: Buffer, nonce: string, probes: Probe[]): ParsedProbes {
  let pos = 0
  const readLine = (): string => {
    const end = output.indexOf(0x0a, pos)
    if (end === -1) throw new ProbeParseError(`probe output ended early (after ${pos} bytes)`)
    const line = output.subarray(pos, end).toString('latin1')
    pos = end + 1
    return line
  }

  const expect = (marker: string): string[] => {
    const words = readLine().trim().split(/\s+/)
    if (words[0] !== marker || words[1] !== nonce) throw new ProbeParseError(`expected the ${marker} line`)
    return words.slice(2)
  }

  const clock = expect('HA-CLOCK')
  const hostTime = Number.parseFloat(clock[0])
  if (!Number.isFinite(hostTime)) throw new ProbeParseError(`the host's clock reading "${clock[0]}" is not a number`)
  const statuses = expect('HA-STATUS').map(Number)
  if (statuses.length !== probes.length || !statuses.every((n) => Number.isInteger(n) && n >= 0)) {
    throw new ProbeParseError(`expected ${probes.length} exit statuses, got "${statuses.join(' ')}"`)
  }

  expect('HA-SIZES')
  const sizes: number[] = []
  for (let i = 0; i < 2 * probes.length; i++) {
    const size = Number(readLine().trim())
    if (!Number.isInteger(size) || size < 0) throw new ProbeParseError('malformed output size')
    sizes.push(size)
  }

  expect('HA-DATA')
  const results: ProbeResult[] = []
  for (const [i, probe] of probes.entries()) {
    const [outLength, errLength] = [sizes[2 * i], sizes[2 * i + 1]]
    if (pos + outLength + errLength > output.length) throw new ProbeParseError(`probe "${probe.id}": output truncated`)
    const stdout = Buffer.from(output.subarray(pos, pos + outLength))
    const stderr = Buffer.from(output.subarray(pos + outLength, pos + outLength + errLength))
    pos += outLength + errLength
    results.push({argv: probe.argv, code: statuses[i], id: probe.id, stderr, stdout})
  }

  expect('HA-END')
  return {host_time_s: hostTime, results}
}

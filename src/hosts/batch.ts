import {randomBytes} from 'node:crypto'

import type {Probe, ProbeResult} from './host.js'
import {quoteArgv} from './quote.js'

/**
 * Many probes in one remote exec. The script is fixed text plus each probe's quoted argv; every
 * probe's output is framed by a header carrying a per-batch nonce and the exact byte lengths of
 * its stdout and stderr, so no output — however hostile — can be mistaken for a frame boundary.
 * The host's clock is printed first, before any probe runs, so its arrival time bounds when it
 * was read (clock skew without a second round trip).
 */
export interface ProbeScript {
  nonce: string
  script: string
}

export function buildProbeScript(probes: Probe[]): ProbeScript {
  const nonce = randomBytes(8).toString('hex')
  const lines = [
    `d=$(mktemp -d) || { echo "ha: mktemp -d failed on this host" >&2; exit 125; }`,
    `trap 'rm -rf "$d"' EXIT`,
    `trap 'exit 129' HUP INT TERM`,
    `printf 'HA-CLOCK ${nonce} %s\\n' "$(date +%s.%N)"`,
    `p() { "$@" </dev/null >"$d/o" 2>"$d/e"; s=$?; printf 'HA-PROBE ${nonce} %s %s %s\\n' "$s" "$(wc -c <"$d/o")" "$(wc -c <"$d/e")"; cat "$d/o" "$d/e"; }`,
    ...probes.map((probe) => `p ${quoteArgv(probe.argv)}`),
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

  const clock = readLine().split(' ')
  if (clock[0] !== 'HA-CLOCK' || clock[1] !== nonce) throw new ProbeParseError('probe output does not start with the clock line')
  const hostTime = Number.parseFloat(clock[2])
  if (!Number.isFinite(hostTime)) throw new ProbeParseError(`the host's clock reading "${clock[2]}" is not a number`)
  const results: ProbeResult[] = []
  for (const probe of probes) {
    const header = readLine().trim().split(/\s+/)
    if (header[0] !== 'HA-PROBE' || header[1] !== nonce || header.length !== 5) {
      throw new ProbeParseError(`probe "${probe.id}": malformed frame header`)
    }

    const [code, outLength, errLength] = header.slice(2).map(Number)
    if (![code, outLength, errLength].every((n) => Number.isInteger(n) && n >= 0)) {
      throw new ProbeParseError(`probe "${probe.id}": malformed frame header`)
    }

    if (pos + outLength + errLength > output.length) throw new ProbeParseError(`probe "${probe.id}": output truncated`)
    const stdout = output.subarray(pos, pos + outLength)
    const stderr = output.subarray(pos + outLength, pos + outLength + errLength)
    pos += outLength + errLength
    results.push({argv: probe.argv, code, id: probe.id, stderr: Buffer.from(stderr), stdout: Buffer.from(stdout)})
  }

  const end = readLine()
  if (end !== `HA-END ${nonce}`) throw new ProbeParseError('probe output has no end marker')
  return {host_time_s: hostTime, results}
}

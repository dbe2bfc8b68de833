import {spawn} from 'node:child_process'

import type {Config} from '../config/schema.js'

type Verify = NonNullable<Config['failover']['verify']>

async function httpStatus(url: string, signal?: AbortSignal): Promise<{body: string; status: number}> {
  const response = await fetch(url, {signal: AbortSignal.any([AbortSignal.timeout(5000), ...(signal ? [signal] : [])])})
  return {body: (await response.text()).slice(0, 500), status: response.status}
}

async function runHere(argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {stdio: 'ignore', timeout: 60_000})
    child.on('error', () => resolve(127))
    child.on('close', (code) => resolve(code ?? 128))
  })
}

/**
 * One ask of the service as failover.verify says, from where ha runs: a GET expecting its status,
 * or the argv exiting 0. The answer in words either way (status and body start, or exit status).
 * A failover's verify and the switchover under Pacemaker both ask this way.
 */
export async function askService(v: Verify, signal?: AbortSignal): Promise<{answer: string; ok: boolean}> {
  if (v.http) {
    const r = await httpStatus(v.http, signal).catch((error: Error) => ({body: error.message, status: 0}))
    return {answer: `${r.status} ${r.body.trim()}`, ok: r.status === v.status}
  }

  const code = await runHere(v.argv!)
  return {answer: `exit ${code}`, ok: code === 0}
}

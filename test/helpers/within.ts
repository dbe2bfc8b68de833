import {setTimeout as sleep} from 'node:timers/promises'

/**
 * The lab tests' bounded wait: `probe` again every `everyMs` until it gives a value (returned) or
 * `seconds` have passed (undefined). A probe that throws fails the wait at once, unless
 * `retryErrors` (a node that is booting, or fenced, answers with an error for a while).
 */
export async function within<T>(seconds: number, probe: () => Promise<T | undefined>, options: {everyMs?: number; retryErrors?: boolean} = {}): Promise<T | undefined> {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    const found = options.retryErrors ? await probe().catch(() => undefined) : await probe()
    if (found !== undefined) return found
    await sleep(options.everyMs ?? 250)
  }

  return undefined
}

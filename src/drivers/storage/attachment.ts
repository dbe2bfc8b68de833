import {spawn} from 'node:child_process'
import {realpath} from 'node:fs/promises'

import type {Attachment, StorageDriver} from './driver.js'

/**
 * A storage driver's attachment probe run on this machine, as `ha backup` needs it: a backup on
 * the standby would write into the bare mountpoint on the root disk, where the real mount later
 * hides it. `ha check` and the failover run the same probe on the nodes over ssh.
 *
 * Bounded: a hung findmnt on a dead NFS mount must not hang cron.
 */
export async function localAttachment(driver: StorageDriver, dataDirOnHost: string, timeoutMs = 15_000): Promise<Attachment> {
  const argv = driver.probeArgv(dataDirOnHost)
  const {code, stderr, stdout} = await new Promise<{code: number; stderr: string; stdout: string}>((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs})
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', (error: NodeJS.ErrnoException) => resolve({code: error.code === 'ENOENT' ? 127 : 126, stderr: error.message, stdout: ''}))
    child.on('close', (status, signal) => resolve({code: status ?? 128, stderr: signal ? `${argv[0]} killed by ${signal}` : err, stdout: out}))
  })
  const attachment = driver.interpret(code, stdout, stderr)
  const rule = driver.device
  if ('held' in attachment && attachment.held && rule) {
    const source = String(attachment.detail.source)
    const [want, have] = await Promise.all([realpath(rule.device).catch(() => rule.device), realpath(source).catch(() => source)])
    return rule.mismatch(dataDirOnHost, attachment, want, have) ?? attachment
  }

  return attachment
}

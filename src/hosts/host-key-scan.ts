import {Client} from 'ssh2'

import {describeSystemError, HaError} from '../core/errors.js'
import {preferredHostKeyAlgorithms} from './host-key-algorithms.js'
import {type HostKeyVerdict, judgeHostKey} from './host-key-verdict.js'
import {hostKeyName, readKnownHosts} from './known-hosts.js'
import {fingerprint} from './ssh-key-blob.js'

/** The key a host presents, read with a handshake that stops there (no credential is sent), judged against known_hosts as ssh would. */
export interface PresentedKey {
  blob: Buffer
  fingerprint: string
  verdict: HostKeyVerdict
}

export async function presentedHostKey(host: string, port: number, knownHosts: string, timeoutMs: number): Promise<PresentedKey> {
  const known = await readKnownHosts(knownHosts)
  const blob = await new Promise<Buffer>((resolve, reject) => {
    const client = new Client()
    let key: Buffer | undefined
    const done = (error?: Error) => {
      client.removeAllListeners()
      client.on('error', () => {})
      client.end()
      if (key) resolve(key)
      else reject(error ?? new Error('the server closed the connection before showing its host key'))
    }

    client.on('error', (error) => done(error))
    client.on('close', () => done())
    client.on('ready', () => done())
    client.connect({
      algorithms: {serverHostKey: preferredHostKeyAlgorithms(known, host, port)},
      host,
      hostVerifier: (presented: Buffer, verify: (valid: boolean) => void) => {
        key = Buffer.from(presented)
        // Refuse here: this connection only reads the key; nothing is authenticated on it.
        verify(false)
      },
      port,
      readyTimeout: timeoutMs,
      tryKeyboard: false,
      username: 'ha-init-key-scan',
    })
  }).catch((error: unknown) => {
    throw new HaError(`cannot read the ssh host key of ${hostKeyName(host, port)}: ${describeSystemError(error)}`, {
      actions: [`check that ${host} is up and its sshd listens on port ${port} (ssh -p ${port} ${host} true)`],
    })
  })
  return {blob, fingerprint: fingerprint(blob), verdict: judgeHostKey(known, host, port, blob)}
}

import assert from 'node:assert/strict'
import {chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {connectSsh} from '../../src/hosts/ssh-connect.js'
import {SshConnectError} from '../../src/hosts/ssh-host.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {startSshd, type TestSshd} from '../helpers/sshd.js'
import {runSsh} from '../helpers/ssh-verdict.js'

/**
 * identity_file permissions, judged as ssh(1) judges them (authfile.c): a private key owned by
 * the user running ha and accessible to group or others is refused, "UNPROTECTED PRIVATE KEY
 * FILE", with the chmod that fixes it; a key owned by someone else is not judged. Every mode
 * below is tried with ssh and with ha on the same file.
 */
const skip = missingPrerequisite(['root', 'sshd'])

describe('identity_file modes: ha refuses exactly the keys ssh refuses', {skip}, () => {
  let sshd: TestSshd
  let work: string
  let knownHosts: string

  before(async () => {
    sshd = await startSshd()
    work = mkdtempSync(join(tmpdir(), 'ha-identity-'))
    knownHosts = join(work, 'known_hosts')
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`)
  })
  after(async () => {
    await sshd?.stop()
    rmSync(work, {force: true, recursive: true})
  })

  const modes = [0o600, 0o400, 0o700, 0o640, 0o604, 0o644, 0o660, 0o610, 0o601, 0o666, 0o444]
  for (const owner of ['root', 'another user'] as const) {
    test(`a key owned by ${owner}: ${modes.length} modes, same decision as ssh`, async () => {
      for (const mode of modes) {
        const key = join(work, `key-${owner === 'root' ? 'root' : 'other'}-${mode.toString(8)}`)
        copyFileSync(sshd.clientKey, key)
        chmodSync(key, mode)
        if (owner !== 'root') chownSync(key, 1234, 1234)
        const theirs = await runSsh(sshd, sshd.port, knownHosts, 'strict', key)
        const sshRefused = /UNPROTECTED PRIVATE KEY FILE/.test(theirs.stderr)
        assert.equal(sshRefused, theirs.code !== 0, `ssh either connects or refuses the key (mode ${mode.toString(8)}): ${theirs.stderr}`)
        let haRefusal: SshConnectError | undefined
        try {
          const host = await connectSsh('peer', '/', {
            client: 'ssh2', command_timeout: 20, connect_timeout: 10, host: sshd.host, host_key_policy: 'strict', identity_file: key,
            keepalive_interval: 5, known_hosts: knownHosts, port: sshd.port, user: 'root',
          })
          await host.close()
        } catch (error) {
          if (!(error instanceof SshConnectError)) throw error
          haRefusal = error
        }

        const where = `mode 0${mode.toString(8)}, owner ${owner}`
        assert.equal(haRefusal !== undefined, sshRefused, `${where}: ssh ${sshRefused ? 'refuses' : 'uses'} the key; ha must do the same (${haRefusal?.message ?? 'ha connected'})`)
        if (haRefusal) {
          assert.equal(haRefusal.kind, 'identity', where)
          assert.match(haRefusal.message, new RegExp(`UNPROTECTED PRIVATE KEY FILE: permissions 0${(mode & 0o777).toString(8)} for identity_file ${key} are too open`))
          assert.equal(haRefusal.actions[0], `chmod 600 ${key}`, where)
        }
      }
    })
  }
})

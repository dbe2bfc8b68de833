import assert from 'node:assert/strict'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {ha, tempDir} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {makeKey, startSshd} from '../helpers/sshd.js'

/**
 * ha init --cert-authority: a site whose host keys are signed by a CA (OpenSSH host
 * certificates). One real sshd stands for both nodes (this machine at 127.0.0.1, the peer at
 * "localhost"), serving a certificate for both names. The built CLI, from a script.
 */
describe('ha init with a certificate authority for the host keys (--cert-authority)', {skip: missingPrerequisite(['root', 'sshd'])}, () => {
  async function setUp(t: Parameters<typeof tempDir>[0], signer?: 'other') {
    const dir = tempDir(t)
    const ca = join(dir, 'ca')
    const caLine = makeKey(ca, 'ed25519')
    const other = join(dir, 'other_ca')
    makeKey(other, 'ed25519')
    const sshd = await startSshd({hostCertificate: {principals: '127.0.0.1,localhost'}, hostCertificateCa: signer === 'other' ? other : ca, t})
    const knownHosts = join(dir, 'known_hosts')
    const dataDir = join(dir, 'data')
    mkdirSync(dataDir)
    const config = join(dir, 'etc/ha/ha.yaml')
    const args = [
      'init', '--yes', '--config', config, '--no-check',
      '--address', '127.0.0.1', '--peer', 'localhost', '--ssh-port', String(sshd.port),
      '--identity-file', sshd.clientKey, '--known-hosts', knownHosts,
      '--hostname', 'ctl-a', '--peer-hostname', 'ctl-b', '--data-dir', dataDir, '--storage', 'none',
      '--service-ip', '198.18.1.10/24', '--interface', 'eth0', '--services', '',
      '--cert-authority', `${ca}.pub`,
    ]
    return {args, caLine, config, dir, knownHosts, sshd}
  }

  it('records one @cert-authority line for both nodes (no plain key), writes ssh.client: openssh, and ha config check accepts it; run again, nothing is added', async (t) => {
    const {args, caLine, config, knownHosts, sshd} = await setUp(t)
    const r = ha([...args, '--json'])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.deepEqual(
      r.json!.result.host_keys.map((k: {host: string; how: string}) => [k.host, k.how]),
      [['127.0.0.1', 'certified by the --cert-authority key'], ['localhost', 'certified by the --cert-authority key']],
    )
    const line = `@cert-authority [127.0.0.1]:${sshd.port},[localhost]:${sshd.port} ${caLine.split(' ').slice(0, 2).join(' ')}\n`
    assert.equal(readFileSync(knownHosts, 'utf8'), line, 'the CA line, and no host key of either node')
    const written = readFileSync(config, 'utf8')
    assert.equal(written.match(/client: openssh/g)?.length, 2, written)
    const check = ha(['config', 'check', '--config', config, '--json'])
    assert.equal(check.status, 0, check.stdout + check.stderr)

    const again = ha([...args, '--force', '--json'])
    assert.equal(again.status, 0, again.stdout + again.stderr)
    assert.equal(readFileSync(knownHosts, 'utf8'), line, 'the CA line is there already: nothing added')
  })

  it('the hosts\' certificates signed by another CA: refused as ssh refuses them, known_hosts unchanged, the configuration not written', async (t) => {
    const {args, config, knownHosts} = await setUp(t, 'other')
    writeFileSync(knownHosts, '# the admin\'s own\n')
    const r = ha([...args, '--json'])
    assert.equal(r.status, 1, r.stdout + r.stderr)
    assert.match(r.json!.error!.message, /^cannot connect to primary \(root@127\.0\.0\.1:\d+\): the host key SHA256:\S+ is not in \S+known_hosts with the @cert-authority line of \S+ca\.pub \(nor vouched for by a @cert-authority line ssh accepts\)/)
    assert.equal(readFileSync(knownHosts, 'utf8'), '# the admin\'s own\n')
    assert.equal(existsSync(config), false)
  })

  it('a file that is no CA public key (a host certificate, two keys, nonsense): refused naming the file and the flag, nothing written, no ssh tried', async (t) => {
    const {args, config, dir, knownHosts, sshd} = await setUp(t)
    const cert = readFileSync(join(sshd.dir, 'host_ed25519-cert.pub'), 'utf8')
    const bad = {
      'certificate.pub': cert,
      'missing.pub': undefined,
      'nonsense.pub': 'not a key\n',
      'two.pub': `${readFileSync(join(dir, 'ca.pub'), 'utf8')}${readFileSync(join(dir, 'other_ca.pub'), 'utf8')}`,
    }
    for (const [name, text] of Object.entries(bad)) {
      const file = join(dir, name)
      if (text !== undefined) writeFileSync(file, text)
      const r = ha([...args.slice(0, -1), file, '--json'])
      assert.equal(r.status, 1, `${name}: ${r.stdout}${r.stderr}`)
      assert.ok(r.json!.error!.message.startsWith(`--cert-authority ${file}: `), `${name}: ${r.json!.error!.message}`)
      assert.equal(existsSync(knownHosts), false, `${name}: known_hosts not created`)
      assert.equal(existsSync(config), false)
      assert.equal(existsSync(`${config}.draft`), false, `${name}: no draft either (nothing was asked yet that a draft would keep)`)
    }
  })
})

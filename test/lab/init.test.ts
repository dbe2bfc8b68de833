import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {after, before, describe, it} from 'node:test'

import {parse} from 'yaml'

import {labNetns, labPaths} from '../../src/lab/lab.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {labDirFor, labDone, labReady} from './shared-lab.js'
import {terminal} from '../helpers/tmux.js'

/**
 * Issue 10's first hour, on the lab's primary as an admin meets it: logged in over ssh at a real
 * terminal (tmux), `ha init` from no configuration to one that `ha check` passes, every question
 * answered by hand and every screen checked; then the same from a script with flags only. Each
 * run uses a known_hosts of its own that starts empty, so the host keys are met for the first
 * time: the primary's own is recognised, the secondary's is shown and must be confirmed.
 */
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping', 'tmux'])
const labDir = labDirFor('init')
const lab = labPaths(labDir)
const address = {primary: '198.18.0.2', secondary: '198.18.0.3'} as const
const sshArgs = (tty: boolean) => [
  'netns', 'exec', labNetns.admin, 'ssh', ...(tty ? ['-tt'] : []), '-i', lab.adminKey, '-o', `UserKnownHostsFile=${lab.knownHosts}`,
  '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5',
]

function ssh(node: keyof typeof address, command: string) {
  const r = spawnSync('ip', [...sshArgs(false), `root@${address[node]}`, command], {encoding: 'utf8', timeout: 180_000})
  return {status: r.status, stderr: r.stderr ?? '', stdout: r.stdout ?? ''}
}

describe('ha init on the lab primary', {skip}, () => {
  let secondaryKey: string
  before(async () => {
    await labReady(labDir)
    // A fresh archive, so that the check init ends with has nothing to say about backup age.
    const backup = ssh('primary', 'ha backup --quiet')
    assert.equal(backup.status, 0, backup.stderr)
    secondaryKey = ssh('secondary', 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub').stdout.split(' ')[1]
    assert.match(secondaryKey, /^SHA256:/)
  })
  after(async () => {
    // What the two runs below wrote on the primary, so that the lab is as up left it for the next file.
    ssh('primary', 'rm -rf /root/wizard /root/script /root/.ssh/wizard_known_hosts /root/.ssh/script_known_hosts')
    await labDone(labDir)
  })

  it('at a terminal: every question proposes what it detected, the peer key is shown and confirmed, the config is written and ha check passes', async (t) => {
    const config = '/root/wizard/ha.yaml'
    const knownHosts = '/root/.ssh/wizard_known_hosts'
    const command = ['ip', ...sshArgs(true), `root@${address.primary}`, `TERM=xterm NO_COLOR=1 ha init --config ${config}; echo "[exit $?]"; sleep 600`]
    const term = terminal(t, command.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' '))
    const answer = async (question: RegExp, text: string) => {
      await term.waitFor(question, 60_000)
      term.type(text)
    }

    await answer(/Which node is this machine, primary or secondary\? \(primary\)/, '')
    await answer(/This machine's hostname \(as primary\)\? \(ctl-a\)/, '')
    await answer(/reach this machine at over ssh\? \(198\.18\.0\.2\)/, '')
    await answer(/The secondary's address \(ssh\)\?/, address.secondary)
    await answer(/The ssh user on both nodes\? \(root\)/, '')
    await answer(/The ssh port on both nodes\? \(22\)/, '')
    await answer(/The private key ha logs in with\? \(empty: none\) \(\/root\/\.ssh\/id_ed25519\)/, '')
    await answer(/known_hosts file ha checks host keys against\? \(\/root\/\.ssh\/known_hosts\)/, knownHosts)
    // The primary's own key is recognised from its /etc/ssh; the secondary's is shown for confirmation.
    const shown = await term.waitFor(/Trust SHA256:\S+ as the secondary's host key/, 60_000)
    assert.ok(shown.includes(`The secondary (198.18.0.3) presents the host key ${secondaryKey}, which ${knownHosts} does not know.`), shown)
    term.type('y')
    // Recorded only now that both are decided: the primary's own, then the confirmed one.
    await term.waitFor(/added this machine's own host key SHA256:\S+ for 198\.18\.0\.2 to \/root\/\.ssh\/wizard_known_hosts/)
    await answer(/The secondary's hostname\? \(ctl-b\)/, '')
    await answer(/The data directory on the shared storage\? \(\/var\/opt\/sun\/xvm\)/, '')
    await answer(/The product's version file\? \(\/n1gc-setup\/\.version\.properties\)/, '')
    await answer(/How the shared storage moves: mount, zfs, manual or none\? \(mount\)/, '')
    await answer(/The block device of the shared storage\? \(empty: none\) \(\/dev\/sdb\)/, '')
    await answer(/The service IP clients use, as address\/prefix\? \(empty: none\)/, '999.18.0.100/24')
    await term.waitFor(/999 is not an octet/)
    term.keys('C-u')
    term.type('198.18.0.100/24')
    await answer(/The interface the service IP goes on\? \(eth0\)/, '')
    // The lab's nodes are Debian's ifupdown: detected and proposed.
    await answer(/How both nodes configure their addresses at boot: ifupdown, networkmanager, ifcfg or netplan\? \(ifupdown\)/, '')
    await answer(/Where archives go, inside the data directory\? \(\.ha\/backups\)/, '')
    await answer(/services\? \(empty: none\) \(\/etc\/init\.d\/xvm\)/, '')
    assert.equal(await term.exitCode(120_000), 0, term.screen())
    const screen = term.screen()
    assert.match(screen, new RegExp(`wrote: ${config} \\(this machine is the primary\\)`))
    assert.ok(screen.includes(`host key of the secondary (198.18.0.3): ${secondaryKey}, confirmed at the terminal`), screen)
    assert.match(screen, /passed, 0 warned, 0 failed: safe to fail over/)

    const check = ssh('primary', `ha check --config ${config} --quiet; echo "exit $?"; stat -c %a ${config}; cat ${config}`)
    assert.match(check.stdout, /^exit 0\n644\n/, check.stdout + check.stderr)
    const written = parse(check.stdout.split('\n').slice(2).join('\n'))
    assert.equal(written.nodes.secondary.hostname, 'ctl-b')
    assert.equal(written.nodes.primary.ssh.host_key_policy, 'strict')
    assert.deepEqual(written.service_ips, [{address: '198.18.0.100/24', interface: 'eth0'}])
    assert.equal(written.storage.kind, 'mount')
  })

  it('from a script, flags only: --yes stops at the unknown peer key (exit 4, the fingerprint named); with --peer-host-key the same config, and ha check passes', () => {
    const base = `ha init --yes --config /root/script/ha.yaml --peer ${address.secondary} --known-hosts /root/.ssh/script_known_hosts --service-ip 198.18.0.100/24`
    const stopped = ssh('primary', `${base} --json`)
    assert.equal(stopped.status, 4, stopped.stdout + stopped.stderr)
    const envelope = JSON.parse(stopped.stdout)
    assert.equal(envelope.error.name, 'InitConfirmationNeededError')
    assert.ok(envelope.error.actions.some((a: string) => a.includes(`--peer-host-key ${secondaryKey}`)), stopped.stdout)
    assert.notEqual(ssh('primary', 'test -e /root/script/ha.yaml').status, 0, 'no config written')
    assert.notEqual(ssh('primary', 'test -e /root/.ssh/script_known_hosts').status, 0, 'no host key recorded, not even its own')

    const done = ssh('primary', `${base} --peer-host-key ${secondaryKey} --json`)
    assert.equal(done.status, 0, done.stdout + done.stderr)
    const result = JSON.parse(done.stdout).result
    assert.equal(result.check.counts.fail, 0)
    assert.deepEqual(result.host_keys.map((k: {how: string}) => k.how), ["this machine's own key", 'given as --peer-host-key'])
    // The wizard's answers (all defaults but the peer and the service IP) and the flags give one config.
    const both = ssh('primary', 'cat /root/wizard/ha.yaml; echo ---; cat /root/script/ha.yaml').stdout.split('\n---\n')
    const strip = (text: string) => {
      const c = parse(text)
      for (const n of ['primary', 'secondary']) delete c.nodes[n].ssh.known_hosts
      return c
    }

    assert.equal(both.length, 2, 'the wizard (previous test) and the script each wrote a config')
    assert.deepEqual(strip(both[1]), strip(both[0]))
    const check = ssh('primary', 'ha check --config /root/script/ha.yaml --quiet')
    assert.equal(check.status, 0, check.stderr)
  })
})

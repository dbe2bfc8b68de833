import assert from 'node:assert/strict'
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {parse, stringify} from 'yaml'

import {missingPrerequisite} from '../helpers/prereq.js'
import {failoverLab} from './failover-helpers.js'
import {labDirFor} from './shared-lab.js'

// The lab's pair reached through the system ssh (ssh.client: openssh, issue 20): ha check and a
// failover round trip give what they give over ssh2, and no ssh master outlives the ha that
// started it. Over ssh2 the same commands are the other lab files' business.
const skip = missingPrerequisite(['root', 'netns', 'loop', 'sshd', 'arping'])
const labDir = labDirFor('openssh-transport')
const journalDir = `${labDir}-journal`
const {assertServes, down, haAdmin, lab, ssh, up} = failoverLab(labDir, journalDir)

/** The lab's own config with every node's ssh block set to the system ssh; outside the lab dir, which a shared lab compares. */
function opensshConfig(dir: string): string {
  const config = parse(readFileSync(lab.config, 'utf8'))
  for (const node of Object.values(config.nodes) as Array<{ssh: Record<string, unknown>}>) node.ssh.client = 'openssh'
  const file = join(dir, 'ha-openssh.yaml')
  writeFileSync(file, stringify(config))
  return file
}

/** ssh processes (masters or their watchdogs) that use this lab's admin key: none once ha has ended. */
function mastersLeft(): string[] {
  const left: string[] = []
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let cmdline = ''
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
    } catch {
      continue
    }

    if (cmdline.includes(lab.adminKey) && /(^|\s)(ssh|sh)\s/.test(cmdline) && /ha-ssh-|\s-M\s/.test(cmdline)) left.push(`${pid}: ${cmdline}`)
  }

  return left
}

describe('the lab over the OpenSSH transport (ssh.client: openssh)', {skip}, () => {
  let dir = ''
  let config = ''
  before(async () => {
    await up()
    dir = mkdtempSync(join(tmpdir(), 'ha-openssh-lab-'))
    config = opensshConfig(dir)
  })
  after(async () => {
    rmSync(dir, {force: true, recursive: true})
    await down()
  })

  it('ha check passes with the same checks and verdicts as over ssh2, and leaves no ssh master behind', () => {
    // A fresh lab has no backup yet, which ha check rightly fails.
    assert.equal(ssh('primary', 'ha backup --quiet').status, 0)
    const over = (file: string) => {
      const r = haAdmin(['check', '--json'], {}, file)
      assert.equal(r.status, 0, `${file}: ${r.stdout}\n${r.stderr}`)
      return (r.envelope!.result.checks as Array<{id: string; node?: string; status: string}>).map((c) => `${c.id}${c.node ? `@${c.node}` : ''}:${c.status}`).sort()
    }

    assert.deepEqual(over(config), over(lab.config))
    assert.deepEqual(mastersLeft(), [])
  })

  it('fails over and back through the system ssh: each node\'s reboot ends its master, the run connects again, the service answers on each side', () => {
    for (const to of ['secondary', 'primary'] as const) {
      const r = haAdmin(['failover', '--yes', '--json'], {}, config)
      assert.equal(r.status, 0, `to ${to}: ${r.stdout}\n${r.stderr}`)
      assert.equal(r.envelope!.result.to, to)
      assert.ok(r.events.some((e) => e.step === 'reboot' && e.event === 'done'), `the node taking over rebooted: ${JSON.stringify(r.events)}`)
      assertServes(to)
      assert.deepEqual(mastersLeft(), [], `no master left after the failover to ${to}`)
    }
  })
})

import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {controllerConfig} from '../../scripts/controller-root.mjs'
import {ha, haSpawn, repoRoot} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {changedPaths, dataDirOf, makePair, moveStorage, type Pair, secondarySnapshot} from '../helpers/restore-fixture.js'
import {haInTerminal} from '../helpers/tmux.js'

/**
 * `ha restore` asks before it changes a host, and only where someone can answer: driven in a real
 * terminal (tmux), screens read back as the admin sees them; without a terminal it exits 4 and
 * names --yes. The same two controller roots as test/integration/restore.test.ts.
 */
const skip = missingPrerequisite(['root', 'tmux'])

function afterFailover(t: Parameters<typeof makePair>[0]): Pair {
  const pair = makePair(t)
  const b = ha(['backup', '--config', pair.config, '--node', 'primary'])
  assert.equal(b.status, 0, b.stderr)
  moveStorage(pair)
  return pair
}

/** Env that makes the CLI list every module it resolves into `file`. */
const traced = (file: string) => ({HA_TRACE_IMPORTS: file, NODE_OPTIONS: `--import ${join(repoRoot, 'test/helpers/trace-imports/register.mjs')}`})
const loadedInquirer = (file: string) => existsSync(file) && readFileSync(file, 'utf8').includes('/@inquirer/')

const restoreArgs = (pair: Pair, ...args: string[]) => ['restore', ...args, '--config', pair.config, '--node', 'secondary']

describe('ha restore confirmation', {skip}, () => {
  test('at a terminal it shows the node and how it was chosen, the backup and each owner mapping, then changes nothing when the answer is no', async (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    const term = haInTerminal(t, restoreArgs(pair))
    const screen = await term.waitFor(/Restore onto secondary from backup \S+\?/)
    assert.match(screen, /this is node secondary \(ctl-b, root .*\): chosen with --node secondary/)
    assert.match(screen, /backup \d{8}T\d{6}Z-\d{4}, taken on ctl-a \(primary\)/)
    assert.match(screen, /re-own of .*\/var\/opt\/sun\/xvm: \d+ of \d+ entries change owner/)
    assert.match(screen, /user xvm: 901 → 1901 \(\d+ entr(y|ies)\)/)
    assert.match(screen, /group xvm: 901 → 1901/)
    assert.match(screen, /replace +\/etc\/opt\/sun\/xvm\/satellite.conf/)
    term.type('n')
    assert.equal(await term.exitCode(), 1)
    assert.match(term.screen(), /not confirmed: restore onto secondary from backup \S+ did not happen; nothing was changed/)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [], 'a "no" changes nothing')
  })

  test('at a terminal "y" restores', async (t) => {
    const pair = afterFailover(t)
    const trace = join(pair.dir, 'imports-terminal.txt')
    const term = haInTerminal(t, restoreArgs(pair), traced(trace))
    await term.waitFor(/Restore onto secondary from backup \S+\? \(y\/N\)/)
    term.type('y')
    assert.equal(await term.exitCode(), 0, term.screen())
    assert.match(term.screen(), /^restored backup \S+ from ctl-a \(primary\) onto secondary/m)
    assert.equal(readFileSync(join(pair.secondary, 'etc/opt/sun/xvm/satellite.conf'), 'utf8'), 'controller=ctl-a\nport=8443\n')
    assert.ok(loadedInquirer(trace), 'the question loaded @inquirer/prompts')
  })

  test('at a terminal, behind an unfinished run, it asks nothing: exit 5 with the host\'s state and the command that goes on', async (t) => {
    const pair = afterFailover(t)
    // A run killed after installing its files: the test hook stops it there, then it is SIGKILLed.
    const child = haSpawn(restoreArgs(pair, '--yes', '--json'), {HA_TEST_PAUSE_AT: 'installed'})
    child.stdout.resume()
    child.stderr.resume()
    const gone = new Promise((resolve) => child.on('exit', resolve))
    for (let i = 0; i < 600 && !/^\d+ \(.*\) T /.test(readFileSync(`/proc/${child.pid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 50))
    child.kill('SIGKILL')
    await gone
    const term = haInTerminal(t, restoreArgs(pair))
    assert.equal(await term.exitCode(), 5, term.screen())
    assert.doesNotMatch(term.screen(), /\(y\/N\)|type the node's name/)
    assert.match(term.screen(), /installed its files but did not finish re-owning/)
    assert.match(term.screen(), /ha restore --resume/)
  })

  test('@inquirer/prompts is not even loaded when no question is shown (--yes, --dry-run, no terminal)', (t) => {
    const pair = afterFailover(t)
    for (const [name, args] of [['dry-run', ['--dry-run']], ['no-terminal', []], ['yes', ['--yes']]] as const) {
      const trace = join(pair.dir, `imports-${name}.txt`)
      const r = ha(restoreArgs(pair, ...args), {env: traced(trace)})
      assert.equal(r.status, name === 'no-terminal' ? 4 : 0, r.stderr)
      assert.ok(existsSync(trace) && readFileSync(trace, 'utf8').includes('/dist/commands/restore.js'), 'the trace works')
      assert.equal(loadedInquirer(trace), false, `${name}: @inquirer/prompts was not loaded`)
    }
  })

  test('--takeover shows the hostname old → new and runs only when the node\'s name is typed', async (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    const wrong = haInTerminal(t, restoreArgs(pair, '--takeover'))
    const screen = await wrong.waitFor(/type the node's name \(secondary\):/)
    assert.match(screen, /identity of ctl-a taken over \(--takeover\):/)
    assert.match(screen, /replace +\/etc\/hostname +"ctl-b" → "ctl-a"/)
    wrong.type('y')
    assert.equal(await wrong.exitCode(), 1)
    assert.match(wrong.screen(), /not confirmed: "y" is not "secondary"/)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [], 'a wrong name changes nothing')

    const right = haInTerminal(t, restoreArgs(pair, '--takeover'))
    await right.waitFor(/type the node's name \(secondary\):/)
    right.type('secondary')
    assert.equal(await right.exitCode(), 0, right.screen())
    assert.equal(readFileSync(join(pair.secondary, 'etc/hostname'), 'utf8'), 'ctl-a\n')
  })

  test('--undo asks for the node\'s name, then puts the host back', async (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    assert.equal(pair.restore().status, 0)
    const term = haInTerminal(t, restoreArgs(pair, '--undo'))
    const screen = await term.waitFor(/To undo the last restore on secondary, type the node's name \(secondary\):/)
    assert.match(screen, /this is node secondary \(ctl-b, root .*\): chosen with --node secondary/)
    term.type('secondary')
    assert.equal(await term.exitCode(), 0, term.screen())
    assert.match(term.screen(), /^undone restore run/m)
    const changed = changedPaths(before, secondarySnapshot(pair)).filter((p) => !p.startsWith('var/opt/sun/xvm/.ha'))
    assert.deepEqual(changed, [])
  })

  test('Ctrl-C at the question exits 130 and changes nothing', async (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    const term = haInTerminal(t, restoreArgs(pair))
    await term.waitFor(/\(y\/N\)/)
    term.keys('C-c')
    assert.equal(await term.exitCode(), 130)
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [])
  })

  test('without a terminal it exits 4 naming --yes and changes nothing; --yes runs; --dry-run never asks', (t) => {
    const pair = afterFailover(t)
    const before = secondarySnapshot(pair)
    for (const extra of [[], ['--takeover'], ['--undo']]) {
      const r = ha(restoreArgs(pair, ...extra))
      assert.equal(r.status, 4, r.stderr)
      assert.match(r.stderr, /needs a confirmation, and there is no terminal to ask on/)
      assert.match(r.stderr, /run it again with --yes/)
    }

    const json = ha(restoreArgs(pair, '--json'))
    assert.equal(json.status, 4)
    assert.equal(json.json?.status, 4)
    assert.equal(json.json?.error?.name, 'ConfirmationNeededError')
    assert.ok(json.json?.error?.actions.some((a) => a.includes('--yes')))
    assert.deepEqual(changedPaths(before, secondarySnapshot(pair)), [], 'exit 4 changes nothing')

    assert.equal(ha(restoreArgs(pair, '--dry-run')).status, 0)
    const yes = ha(restoreArgs(pair, '--yes'))
    assert.equal(yes.status, 0, yes.stderr)
    assert.ok(changedPaths(before, secondarySnapshot(pair)).includes('var/opt/sun/xvm'), 'the data directory was re-owned')
    assert.ok(dataDirOf(pair.secondary))
  })

  test('a dry run at a terminal lists at most 20 files per kind of change and ends with the exact command, pinned to its backup, which restores that backup', async (t) => {
    const pair = makePair(t)
    for (let i = 0; i < 45; i++) {
      mkdirSync(join(pair.primary, 'opt/many'), {recursive: true})
      writeFileSync(join(pair.primary, 'opt/many', `f${String(i).padStart(2, '0')}`), `${i}\n`)
    }

    writeFileSync(pair.config, controllerConfig({include: ['/opt/many'], primaryRoot: pair.primary, secondaryRoot: pair.secondary}))
    const b = ha(['backup', '--json', '--config', pair.config, '--node', 'primary'])
    assert.equal(b.status, 0, b.stderr)
    const id = b.json!.result.id
    moveStorage(pair)

    const term = haInTerminal(t, restoreArgs(pair, '--dry-run'))
    assert.equal(await term.exitCode(), 0, term.screen())
    const screen = term.screen()
    const creates = screen.split('\n').filter((l) => /^ +create +\//.test(l))
    assert.equal(creates.length, 20, screen)
    // 45 files and /opt/many itself: 46 to create, 20 shown.
    assert.match(screen, /^ +… and 26 more to create \(ha restore --dry-run --json lists all\)$/m)
    const next = new RegExp(`^next: ha restore --backup ${id} --node secondary --config ${pair.config}$`, 'm')
    assert.match(screen, next)

    // Piped or --json, nothing is left out.
    const plain = ha(restoreArgs(pair, '--dry-run'))
    assert.equal(plain.stdout.split('\n').filter((l) => /^ +create +\//.test(l)).length, 46)
    assert.doesNotMatch(plain.stdout, /more to create/)
    assert.match(plain.stdout, next)
    const asJson = ha(restoreArgs(pair, '--dry-run', '--json')).json!.result
    assert.equal(asJson.files.filter((f: {action: string}) => f.action === 'create').length, 46)
    assert.match(`next: ${asJson.next_command}`, next, 'a runbook reads the same pinned command from the envelope')

    // A newer archive appears before the admin runs the printed command: it still restores the one shown.
    const newer = ha(['backup', '--json', '--config', pair.config, '--node', 'secondary'])
    // Partial (exit 3): the secondary has no /opt/many to save; the archive is written all the same.
    assert.equal(newer.status, 3, newer.stderr)
    assert.notEqual(newer.json!.result.id, id)
    const command = screen.match(next)![0].slice('next: ha '.length).split(' ')
    const run = haInTerminal(t, command)
    await run.waitFor(/Restore onto secondary from backup \S+\? \(y\/N\)/)
    assert.match(run.screen(), new RegExp(`Restore onto secondary from backup ${id}\\?`))
    run.type('y')
    assert.equal(await run.exitCode(), 0, run.screen())
    assert.match(run.screen(), new RegExp(`^restored backup ${id} from ctl-a \\(primary\\) onto secondary`, 'm'))
    assert.equal(readFileSync(join(pair.secondary, 'opt/many/f44'), 'utf8'), '44\n')
  })

  test('--backup with an id that is not there is refused, naming the folder, before anything is read', (t) => {
    const pair = afterFailover(t)
    const r = ha(restoreArgs(pair, '--dry-run', '--backup', '20991231T000000Z-9999'))
    assert.equal(r.status, 1)
    assert.match(r.stderr, /no backup "20991231T000000Z-9999" in .*\.ha\/backups/)
    assert.match(r.stderr, /ha backup list shows the archives there/)
  })

  test('--takeover shows each identity file old → new: /etc/hosts lines, host key fingerprints as ssh-keygen prints them, network address lines, all within 80 columns', async (t) => {
    const pair = makePair(t)
    const interfaces = join(pair.primary, 'etc/network/interfaces')
    writeFileSync(interfaces, readFileSync(interfaces, 'utf8').replace('198.18.0.2/24', '198.18.0.3/24'))
    assert.equal(ha(['backup', '--config', pair.config, '--node', 'primary']).status, 0)
    moveStorage(pair)
    // The real ssh-keygen's fingerprint, escaped for a RegExp (base64 holds + and /).
    const fingerprint = (root: string) => execFileSync('ssh-keygen', ['-l', '-f', join(root, 'etc/ssh/ssh_host_ed25519_key.pub')], {encoding: 'utf8'}).split(' ')[1].replaceAll(/[+/]/g, (c) => `\\${c}`)

    const term = haInTerminal(t, restoreArgs(pair, '--takeover'))
    const screen = await term.waitFor(/type the node's name \(secondary\):/)
    const start = screen.indexOf('identity of ctl-a taken over')
    const block = screen.slice(start, screen.indexOf('re-own of', start))
    assert.match(block, /replace +\/etc\/hostname +"ctl-b" → "ctl-a"/, screen)
    assert.match(block, /replace +\/etc\/hosts\n +- 198\.18\.0\.2 ctl-b\n +\+ 198\.18\.0\.2 ctl-a/)
    assert.match(block, new RegExp(`replace +/etc/ssh/ssh_host_ed25519_key\\.pub\\n +- ${fingerprint(pair.secondary)} \\(ED25519\\)\\n +\\+ ${fingerprint(pair.primary)} \\(ED25519\\)`))
    assert.match(block, /replace +\/etc\/network\/interfaces\n +- address 198\.18\.0\.2\/24\n +\+ address 198\.18\.0\.3\/24/)
    for (const line of block.split('\n')) assert.ok(line.length <= 80, `wider than 80 columns: ${line}`)
    assert.match(screen, /user xvm: 901 → 1901 \(\d+ entr(y|ies)\)/)
    term.keys('C-c')
    assert.equal(await term.exitCode(), 130)
  })
})

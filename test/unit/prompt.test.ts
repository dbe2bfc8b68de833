import assert from 'node:assert/strict'
import {PassThrough} from 'node:stream'
import {test} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {canPrompt, ConfirmationNeededError, confirmAction, confirmTyped} from '../../src/cli/prompt.js'
import {describeNode} from '../../src/restore/confirmation.js'

const streams = (stdin: boolean, stderr: boolean) => ({
  stderr: Object.assign(new PassThrough(), {isTTY: stderr}),
  stdin: Object.assign(new PassThrough(), {isTTY: stdin}),
})

test('a question needs both a keyboard and a screen: stdin and stderr are terminals', () => {
  assert.equal(canPrompt(streams(true, true)), true)
  assert.equal(canPrompt(streams(false, true)), false, 'stdin from a pipe or cron')
  assert.equal(canPrompt(streams(true, false)), false, 'stderr redirected to a log')
})

test('without a terminal: exit 4, naming the flag that confirms; --yes asks nothing', async () => {
  type Streams = ReturnType<typeof streams>
  const typed = (o: {action: string; flag?: string; yes: boolean}, s: Streams) => confirmTyped({...o, expected: 'secondary'}, s)
  for (const ask of [confirmAction, typed]) {
    await assert.rejects(ask({action: 'restore onto secondary', yes: false}, streams(false, true)), (error: unknown) => {
      assert.ok(error instanceof ConfirmationNeededError)
      assert.equal(error.exitCode, ExitCode.needsConfirmation)
      assert.match(error.message, /^restore onto secondary needs a confirmation, and there is no terminal to ask on/)
      assert.deepEqual(error.actions, ['run it again with --yes to confirm from a script', 'or run it at a terminal to be asked'])
      return true
    })
    await assert.rejects(ask({action: 'x', flag: '--confirm secondary', yes: false}, streams(true, false)), /x needs a confirmation/)
    await ask({action: 'x', yes: true}, streams(false, false))
  }
})

test('the screen says how this node was decided: --node, or the hostname match in the config', () => {
  const config = {hostname: 'ctl-b', reboot_command: ['/sbin/reboot'], root: '/'}
  assert.equal(describeNode({config, decidedBy: 'flag', name: 'secondary'}, '/etc/ha/ha.yaml'), 'this is node secondary (ctl-b): chosen with --node secondary')
  assert.equal(
    describeNode({config, decidedBy: 'hostname', name: 'secondary'}, '/etc/ha/ha.yaml'),
    "this is node secondary (ctl-b): this machine's hostname matches nodes.secondary.hostname in /etc/ha/ha.yaml",
  )
})

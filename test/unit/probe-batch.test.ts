import assert from 'node:assert/strict'
import {test} from 'node:test'

import {buildProbeScript, parseProbeOutput} from '../../src/hosts/batch.js'
import {LocalHost} from '../../src/hosts/local-host.js'

// The batch format over the local sh (the same script the SSH host sends in one exec).
const host = new LocalHost('primary', '/', 10_000)

test('each probe gets its own status, stdout and stderr, whatever bytes they contain', async () => {
  const batch = await host.probe([
    {argv: ['sh', '-c', 'printf "HA-END x\\nHA-PROBE 0 0 0 0\\n"; printf "\\0\\377" >&2; exit 4'], id: 'hostile'},
    {argv: ['printf', '%s', ''], id: 'empty'},
    {argv: ['sh', '-c', 'cat; echo read-nothing'], id: 'stdin'},
    {argv: ['ha-surely-not-installed'], id: 'missing'},
  ])
  const [hostile, empty, stdin, missing] = batch.results
  assert.equal(hostile.code, 4)
  assert.equal(hostile.stdout.toString(), 'HA-END x\nHA-PROBE 0 0 0 0\n')
  assert.deepEqual([...hostile.stderr], [0, 255])
  assert.equal(empty.stdout.length, 0)
  assert.equal(stdin.stdout.toString(), 'read-nothing\n', 'a probe cannot read the batch\'s stdin')
  assert.equal(missing.code, 127)
  assert.ok(batch.clock_received_at_ms >= batch.sent_at_ms)
})

test('output that is cut short or forged is refused, never half-parsed', () => {
  const probes = [{argv: ['true'], id: 'a'}]
  const {nonce} = buildProbeScript(probes)
  const frame = (n: string, status = '0', size = '2') => Buffer.from(`HA-CLOCK ${n} 1700000000.5\nHA-STATUS ${n} ${status}\nHA-SIZES ${n}\n${size}\n0\nHA-DATA ${n}\nokHA-END ${n}\n`)
  const good = frame(nonce)
  assert.equal(parseProbeOutput(good, nonce, probes).results[0].stdout.toString(), 'ok')
  assert.throws(() => parseProbeOutput(good.subarray(0, good.length - 5), nonce, probes), /ended early|HA-END/)
  assert.throws(() => parseProbeOutput(frame('f00d'), nonce, probes), /HA-CLOCK/)
  assert.throws(() => parseProbeOutput(frame(nonce, '0 0'), nonce, probes), /expected 1 exit statuses/)
  assert.throws(() => parseProbeOutput(frame(nonce, '0', '99'), nonce, probes), /truncated/)
})

test('an empty batch still reads the host clock', async () => {
  const batch = await host.probe([])
  assert.deepEqual(batch.results, [])
  assert.ok(Math.abs(batch.host_time_s - Date.now() / 1000) < 5)
})

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
  const good = Buffer.from(`HA-CLOCK ${nonce} 1700000000.5\nHA-PROBE ${nonce} 0 2 0\nokHA-END ${nonce}\n`)
  assert.equal(parseProbeOutput(good, nonce, probes).results[0].stdout.toString(), 'ok')
  assert.throws(() => parseProbeOutput(good.subarray(0, good.length - 5), nonce, probes), /end marker|ended early/)
  assert.throws(() => parseProbeOutput(Buffer.from(good.toString().replaceAll(nonce, 'f00d')), nonce, probes), /clock line/)
  assert.throws(() => parseProbeOutput(Buffer.from(`HA-CLOCK ${nonce} 1\nHA-PROBE ${nonce} 0 99 0\nok`), nonce, probes), /truncated/)
})

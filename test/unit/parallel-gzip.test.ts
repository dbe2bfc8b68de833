import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, test} from 'node:test'
import {gunzipSync} from 'node:zlib'

import {looksIncompressible, sampleBytes} from '../../src/backup/incompressible.js'
import {ParallelGzipWriter} from '../../src/backup/parallel-gzip.js'

const dir = mkdtempSync(join(tmpdir(), 'ha-pgzip-'))
after(() => rmSync(dir, {force: true, recursive: true}))

const text = (bytes: number) => {
  const lines: string[] = []
  for (let n = 0; lines.length * 40 < bytes; n++) lines.push(`controller.setting.${n % 997}=${n % 13 === 0 ? 'changed' : 'default'} # ${n}\n`)
  return Buffer.from(lines.join('')).subarray(0, bytes)
}

test('random bytes look incompressible; text, zeros and short blocks do not', () => {
  assert.equal(looksIncompressible(randomBytes(64 * 1024)), true)
  assert.equal(looksIncompressible(text(64 * 1024)), false)
  assert.equal(looksIncompressible(Buffer.alloc(64 * 1024)), false)
  assert.equal(looksIncompressible(randomBytes(sampleBytes - 1)), false, 'too short to judge: compressed')
  // Base64 of random bytes is still worth deflating (6 bits a byte).
  assert.equal(looksIncompressible(Buffer.from(randomBytes(48 * 1024).toString('base64'))), false)
})

test('stored and compressed chunks make one gzip stream with every byte in order', async () => {
  const parts = [
    {data: text(300 * 1024), store: false},
    {data: randomBytes(700 * 1024), store: true},
    {data: text(50 * 1024), store: false},
    {data: randomBytes(2500 * 1024), store: true},
  ]
  const file = join(dir, 'mixed.gz')
  const handle = await open(file, 'wx')
  const out = new ParallelGzipWriter(handle, {chunkSize: 256 * 1024, parallel: 2})
  for (const {data, store} of parts) {
    // In pieces, as the packer hands them over.
    for (let at = 0; at < data.length; at += 100_000) out.write(data.subarray(at, at + 100_000), store)
    await out.room()
  }

  await out.end()
  await handle.close()
  const whole = readFileSync(file)
  assert.deepEqual(gunzipSync(whole), Buffer.concat(parts.map((p) => p.data)))
  // The random parts went in stored (a few bytes of framing each 64 KiB), the text compressed.
  const random = 3200 * 1024
  assert.ok(whole.length < random + 20 * 1024 + 60 * 1024, `${whole.length} bytes: the text was not compressed`)
  assert.equal(out.bytesIn, Buffer.concat(parts.map((p) => p.data)).length)
  assert.equal(out.bytesOut, whole.length)
})

test('what is to be stored is stored, even text; what is not is deflated', async () => {
  const file = join(dir, 'stored.gz')
  const handle = await open(file, 'wx')
  const out = new ParallelGzipWriter(handle, {chunkSize: 256 * 1024, parallel: 2})
  const page = text(600 * 1024)
  out.write(page, true)
  out.write(page, false)
  await out.end()
  await handle.close()
  const whole = readFileSync(file)
  assert.deepEqual(gunzipSync(whole), Buffer.concat([page, page]))
  assert.ok(whole.length > page.length, `${whole.length} bytes: the stored copy was deflated`)
  assert.ok(whole.length < page.length * 1.2, `${whole.length} bytes: the second copy was not deflated`)
})

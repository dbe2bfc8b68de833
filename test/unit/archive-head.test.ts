import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'
import {gzipSync} from 'node:zlib'

import {validateArchive} from '../../src/backup/validate-archive.js'
import {tempDir} from '../helpers/cli.js'
import {craftBackup, tarBytes} from '../helpers/craft-archive.js'

/**
 * ha judges an archive's first headers itself, before node-tar sees a byte (archive-read.ts's
 * TarHead): zeros, a bad checksum, an oversized meta header are refused at once. Where ha stands
 * in for GNU tar it must never be looser: seeded variants of a good archive, each with bytes of
 * its first two blocks changed, are read by GNU tar (`tar -tzf`) and by ha in the same test, and
 * every variant GNU tar refuses or reads without manifest.json first, ha refuses too.
 */
const root = {gid: 0, group: 'root', uid: 0, user: 'root'}
const good = tarBytes(craftBackup([{...root, content: 'a=1\n', mode: 0o644, path: '/etc/opt/sun/a.conf'}]))

function seeded(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0
    return s / 2 ** 32
  }
}

function variant(random: () => number, index: number): Buffer {
  const tar = Buffer.from(good)
  switch (index % 4) {
    case 0: {
      // One byte of the first header changed (its checksum then disagrees, mostly).
      tar[Math.floor(random() * 512)] ^= 1 + Math.floor(random() * 255)
      break
    }

    case 1: {
      // The first block zeroed: GNU tar reads a lone zero block or an end.
      tar.fill(0, 0, 512)
      break
    }

    case 2: {
      // Zeros in front of the archive, a block or a few.
      return Buffer.concat([Buffer.alloc(512 * (1 + Math.floor(random() * 4))), tar])
    }

    default: {
      // A run of bytes in the first two blocks set to random values.
      const at = Math.floor(random() * 1024)
      for (let i = at; i < Math.min(at + 1 + Math.floor(random() * 32), 1024); i++) tar[i] = Math.floor(random() * 256)
    }
  }

  return tar
}

describe('the head of an archive: never looser than GNU tar', () => {
  test('60 seeded variants of the first blocks: whatever GNU tar refuses, or lists without manifest.json first, ha refuses', async (t) => {
    const dir = tempDir(t)
    const random = seeded(Number(process.env.HA_HEAD_SEED ?? 21))
    let refusedByBoth = 0
    for (let i = 0; i < 60; i++) {
      const file = join(dir, `v${i}.tar.gz`)
      writeFileSync(file, gzipSync(variant(random, i)))
      const gnu = spawnSync('tar', ['-tzf', file], {encoding: 'utf8'})
      const verdict = await validateArchive(file)
      const gnuFirst = gnu.stdout.split('\n')[0]
      if (gnu.status !== 0 || gnuFirst !== 'manifest.json') {
        assert.equal(verdict.ok, false, `variant ${i}: GNU tar (exit ${gnu.status}, first "${gnuFirst}") but ha accepted it`)
        refusedByBoth++
      }

      if (!verdict.ok) assert.match(verdict.problems.join('\n'), new RegExp(`v${i}\\.tar\\.gz|manifest|tar|member`), `variant ${i} names a reason`)
    }

    assert.ok(refusedByBoth >= 30, `most variants are bad for GNU tar too (${refusedByBoth})`)
  })

  test('zeros before the first header are refused at the first block, naming the archive', async (t) => {
    const dir = tempDir(t)
    const file = join(dir, 'zeros.tar.gz')
    writeFileSync(file, gzipSync(Buffer.concat([Buffer.alloc(2048), good])))
    const verdict = await validateArchive(file)
    assert.deepEqual(verdict.problems, [`${file} does not begin with the tar header of manifest.json (its first block is zeros): not an ha backup archive; remove it or move it out of the backups folder`])
  })
})

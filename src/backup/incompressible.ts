/**
 * Whether a file's bytes look like what deflate cannot shrink (compressed or encrypted data:
 * jars, .gz logs, images, keys). Deflate spends as much CPU on such bytes as on text (about
 * 25 ms per MB at level 6 on this machine, 8× its speed on config text) and saves nothing, so the
 * archive stores them (gzip level 0) instead. A heuristic that only decides how hard to compress:
 * a wrong answer costs some archive size or some time, never a byte of content.
 */

/** Bytes looked at per 1 MiB block read: enough for a stable estimate, cheap (about 10 µs). */
export const sampleBytes = 4096

/** Order-0 entropy above this (of 8 bits per byte) is taken as incompressible. */
const denseBits = 7.5

const counts = new Uint32Array(256)

/** Shannon entropy, in bits per byte, of the first sampleBytes of `block`; 0 for a short one. */
export function sampleEntropy(block: Uint8Array): number {
  if (block.length < sampleBytes) return 0
  counts.fill(0)
  for (let i = 0; i < sampleBytes; i++) counts[block[i]]++
  let bits = 0
  for (const count of counts) {
    if (count === 0) continue
    const p = count / sampleBytes
    bits -= p * Math.log2(p)
  }

  return bits
}

/** Whether one block read from a file looks incompressible (a file is when every block of it does). */
export function looksIncompressible(block: Uint8Array): boolean {
  return sampleEntropy(block) >= denseBits
}

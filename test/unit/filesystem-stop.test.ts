import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {alsoUnmounted, filesystemAgentPath, filesystemStopScript, parseStopProbe, type StopProbe} from '../../src/drivers/storage/filesystem-stop.js'

/**
 * What Pacemaker's Filesystem agent would unmount with the storage (src/drivers/storage/filesystem-stop.ts).
 * The agent finds "bind mounts" of the storage with grep (resource-agents 4.12) or grep -w (later)
 * over /proc/mounts' first three fields: ha's prediction is checked against GNU grep run on the
 * same generated mount tables, in the agent's own pipeline, and the probe script is run against
 * the agent installed here.
 */

// A small deterministic generator (xorshift): the same cases on every run, many shapes of name.
function generator(seed: number) {
  let x = seed
  const next = () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x1_0000_0000
  }

  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]
  return {next, pick}
}

const stems = ['/dev/sdb', '/dev/sdb1', '/dev/loop1', '/dev/loop12', '/dev/nvme0n1p1', '/dev/mapper/vg-data', '/dev/mapper/vg.data', '/dev/drbd1', '/dev/vda'] as const
const tails = ['', '', '0', '1', '2', '-old', '_x', '.1', 'p1', 'X'] as const
const places = ['/', '/srv/a', '/backup', '/var/opt/sun/xvm', '/var/opt/sun/xvm2', '/mnt/dev/sdb1', '/data_x'] as const
const types = ['ext4', 'xfs', 'tmpfs', 'overlay'] as const

/**
 * The agent's list_bindmounts pipeline with the real grep, on list_mounts' output (the first three
 * fields, tab-joined), for many cases in one shell: each case's mountpoints, in order.
 */
function grepBindMounts(cases: StopProbe[], dataDir: string): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'ha-fs-grep-'))
  try {
    const manifest = cases.map((probe, n) => {
      writeFileSync(join(dir, `${n}.list`), probe.mounts.map((line) => line.split(' ').slice(0, 3).join('\t')).join('\n') + '\n')
      return `${n}\t${probe.match === 'word' ? '-w' : '-e'}\t${probe.device}`
    })
    writeFileSync(join(dir, 'cases'), manifest.join('\n') + '\n')
    const script = 'tab=$(printf "\\t"); while IFS="$tab" read -r n opt dev; do echo "=$n"; grep $opt "$dev" "$1/$n.list" | grep -v -e "$tab$2$tab" | cut -f2; done < "$1/cases"'
    const r = spawnSync('sh', ['-c', script, 'agent-pipeline', dir, dataDir], {env: {...process.env, LC_ALL: 'C'}})
    assert.equal(r.status, 0, r.stderr.toString())
    const out: string[][] = []
    for (const line of r.stdout.toString().split('\n').filter(Boolean)) {
      if (line.startsWith('=')) out.push([])
      else out.at(-1)!.push(line)
    }

    assert.equal(out.length, cases.length, 'grep answered every case')
    return out
  } finally {
    rmSync(dir, {force: true, recursive: true})
  }
}

describe('what the Filesystem agent\'s stop unmounts besides data_dir', () => {
  it('is what GNU grep finds, as grep and as grep -w, on 300 generated mount tables', () => {
    const g = generator(0x5eed_1234)
    const dataDir = '/var/opt/sun/xvm'
    // Beside the generated ones, the shapes that tell grep from grep -w: a name inside a longer
    // one, after a word character (a mountpoint /mnt/dev/sdb1), and before '-' or '.'.
    const edges = ['/dev/sdb10 /backup ext4 rw 0 0', 'tmpfs /mnt/dev/sdb1 tmpfs rw 0 0', '/dev/sdb1-old /old xfs rw 0 0', '/dev/sdb1.snap /snap ext4 rw 0 0']
    const cases: StopProbe[] = [
      {device: '/dev/sdb1', match: 'substring', mounts: [`/dev/sdb1 ${dataDir} ext4 rw 0 0`, ...edges]},
      {device: '/dev/sdb1', match: 'word', mounts: [`/dev/sdb1 ${dataDir} ext4 rw 0 0`, ...edges]},
    ]
    for (let i = 0; i < 300; i++) {
      const device = g.pick(stems) + g.pick(tails)
      const mounts = [`${device} ${dataDir} ext4 rw,relatime 0 0`]
      for (let n = Math.floor(g.next() * 6); n > 0; n--) mounts.push(`${g.pick(stems)}${g.pick(tails)} ${g.pick(places)} ${g.pick(types)} rw 0 0`)
      cases.push({device, match: 'substring', mounts}, {device, match: 'word', mounts})
    }

    const expected = grepBindMounts(cases, dataDir)
    let found = 0
    for (const [n, probe] of cases.entries()) {
      assert.deepEqual(alsoUnmounted(probe, dataDir).map((m) => m.mountpoint), expected[n], `${probe.match} ${probe.device} in\n${probe.mounts.join('\n')}`)
      found += expected[n].length
    }

    assert.ok(found > 30, `the generated tables hold cases where something else is unmounted (${found})`)
  })

  it('the lab\'s own case: /dev/loop1 takes the node\'s / (/dev/loop12) for a bind mount under 4.12\'s grep, not under grep -w', () => {
    const mounts = ['/dev/loop12 / ext4 rw,relatime 0 0', '/dev/vda /usr ext4 ro 0 0', '/dev/loop1 /var/opt/sun/xvm ext4 rw 0 0']
    assert.deepEqual(alsoUnmounted({device: '/dev/loop1', match: 'substring', mounts}, '/var/opt/sun/xvm'), [{fstype: 'ext4', mountpoint: '/', source: '/dev/loop12'}])
    assert.deepEqual(alsoUnmounted({device: '/dev/loop1', match: 'word', mounts}, '/var/opt/sun/xvm'), [])
    assert.deepEqual(alsoUnmounted({device: '/dev/loop1', match: 'absent', mounts}, '/var/opt/sun/xvm'), [])
  })

  it('refuses a probe answer that is not one: no device path, an unknown match', () => {
    assert.throws(() => parseStopProbe(''), /the storage's device name came back as "", not a path/)
    assert.throws(() => parseStopProbe('/dev/sdb\nmaybe\n'), /the Filesystem agent's match came back as "maybe"/)
    assert.deepEqual(parseStopProbe('/dev/sdb\nword\n/dev/sdb /d ext4 rw 0 0\n\n'), {device: '/dev/sdb', match: 'word', mounts: ['/dev/sdb /d ext4 rw 0 0']})
  })

  it('the probe reads the agent installed here, resolves a symlinked device, and lists /proc/mounts', () => {
    const installed = existsSync(filesystemAgentPath)
    let probe: StopProbe
    if (!installed && process.env.CI === 'true') assert.fail(`${filesystemAgentPath} is missing: scripts/ensure-deps.mjs installs resource-agents`)
    const dir = mkdtempSync(join(tmpdir(), 'ha-fs-stop-'))
    try {
      symlinkSync('/dev/null', join(dir, 'by-id-disk'))
      const r = spawnSync('sh', ['-c', filesystemStopScript, 'ha-filesystem-stop', join(dir, 'by-id-disk'), '/nowhere/mounted', filesystemAgentPath])
      assert.equal(r.status, 0, r.stderr.toString())
      probe = parseStopProbe(r.stdout.toString())
    } finally {
      rmSync(dir, {force: true, recursive: true})
    }

    assert.equal(probe.device, '/dev/null', 'a symlink is named by what it points to, as mount records it')
    assert.ok(probe.mounts.some((line) => line.split(' ')[1] === '/'), 'the root mount is listed')
    if (installed) {
      const word = spawnSync('grep', ['-qF', 'grep -w "$mount_disk"', filesystemAgentPath]).status === 0
      assert.equal(probe.match, word ? 'word' : 'substring')
    } else {
      assert.equal(probe.match, 'absent')
    }
  })
})

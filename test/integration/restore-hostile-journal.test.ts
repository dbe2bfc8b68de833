import assert from 'node:assert/strict'
import {chmodSync, chownSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {ha} from '../helpers/cli.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {changedPaths, dataDirOf, makePair, moveStorage, type Pair, snapshot} from '../helpers/restore-fixture.js'

/**
 * Issue 11: the undo and re-own journals sit on the shared storage, which anyone with write access
 * to the data directory can plant into. A planted journal, followed with the advice ha itself
 * prints (`ha restore --undo`), must fail closed naming the problem: the node's root unchanged,
 * nothing written beside it. Each case plants its own run folder next to a genuine finished run.
 */
const skip = missingPrerequisite(['root'])

interface Setup {
  canary: string
  genuine: string
  pair: Pair
  undo: string
}

function setUp(t: Parameters<typeof makePair>[0]): Setup {
  const pair = makePair(t)
  const b = ha(['backup', '--config', pair.config, '--node', 'primary', '--json'])
  assert.equal(b.status, 0, b.stderr)
  moveStorage(pair)
  const r = pair.restore('--json')
  assert.equal(r.status, 0, r.stderr)
  const undo = join(dataDirOf(pair.secondary), '.ha/undo')
  const [genuine] = readdirSync(undo)
  // Beside the roots: what a journal pointing outside the node's root would hit.
  const canary = join(pair.dir, 'canary')
  mkdirSync(canary)
  writeFileSync(join(canary, 'shadow'), 'root:$6$untouched:19000:0:99999:7:::\n', {mode: 0o600})
  return {canary, genuine: join(undo, genuine), pair, undo}
}

type Journal = Record<string, any>

/** A new run folder (0099) made from the genuine one, then edited by the case. */
function plant(s: Setup, edit: (j: Journal, dir: string) => void): string {
  const dir = join(s.undo, '0099-20300101T000000Z')
  cpSync(s.genuine, dir, {recursive: true, verbatimSymlinks: true})
  const journal = JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as Journal
  journal.run_id = '0099-20300101T000000Z'
  journal.state = 'installed'
  edit(journal, dir)
  writeFileSync(join(dir, 'journal.json'), JSON.stringify(journal), {mode: 0o600})
  return dir
}

const cases: Array<{edit: (j: Journal, dir: string, s: Setup) => void; modes?: string[][]; name: string; problem: RegExp}> = [
  {
    name: 'a change to a path this node never restores (a sudoers drop-in)',
    edit(j, dir) {
      writeFileSync(join(dir, 'saved/1'), 'ALL ALL=(ALL) NOPASSWD: ALL\n', {mode: 0o600})
      j.changes = [{old: {gid: 0, mode: 0o440, saved: 'saved/1', type: 'file', uid: 0}, op: 'replace', path: '/etc/sudoers.d/ha', target: join(j.root, 'etc/sudoers.d/ha')}]
    },
    problem: /\/etc\/sudoers\.d\/ha is not a path this node's restore installs/,
  },
  {
    name: 'a target outside the node root behind an allowed path',
    edit(j, _dir, s) {
      j.changes = [{op: 'create', path: '/etc/opt/sun/xvm/satellite.conf', target: join(s.canary, 'shadow'), type: 'file'}]
    },
    problem: /its target .* is not .*this node's root plus the path/,
  },
  {
    name: 'a path that climbs out with ..',
    edit(j) {
      j.changes = [{op: 'create', path: '/etc/opt/sun/../../../../canary/shadow', target: join(j.root, '../canary/shadow'), type: 'file'}]
    },
    problem: /is not a clean absolute path/,
  },
  {
    name: 'a change inside ha\'s own folder',
    edit(j) {
      j.changes = [{op: 'create', path: '/var/opt/sun/xvm/.ha/ha.lock', target: join(j.root, 'var/opt/sun/xvm/.ha/ha.lock'), type: 'file'}]
    },
    problem: /lies inside ha's own folder/,
  },
  {
    name: 'a journal written for another root',
    edit(j) {
      j.root = '/'
    },
    problem: /written for root "\/", this node's root is/,
  },
  {
    name: 'a re-own mapping to root',
    edit(j) {
      j.reown_maps.users.push([1902, 0])
    },
    problem: /map id 0/,
  },
  {
    name: 'a saved copy that is a symlink to a secret beside the root',
    edit(j, dir, s) {
      const replace = j.changes.find((c: Journal) => c.op === 'replace' && c.old.saved)
      rmSync(join(dir, replace.old.saved))
      symlinkSync(join(s.canary, 'shadow'), join(dir, replace.old.saved))
      j.state = 'done'
    },
    // Only an undo reads the saved copies.
    modes: [['--undo']],
    problem: /saved\/\d+: it is a symlink/,
  },
  {
    name: 'a run folder writable by everyone',
    edit(_j, dir) {
      chmodSync(dir, 0o777)
    },
    problem: /0099-20300101T000000Z: it is writable by its group and others \(mode 0777\)/,
  },
  {
    name: 'a run folder owned by another user',
    edit(_j, dir) {
      chownSync(dir, 1234, 1234)
    },
    problem: /owned by uid 1234/,
  },
  {
    name: 'a re-own journal whose record climbs out of the data directory',
    edit(j, dir) {
      const path = join(dir, 'reown.journal')
      const lines = readFileSync(path, 'utf8').split('\n')
      const at = lines.findIndex((l) => l.startsWith('C\t'))
      const f = lines[at].split('\t')
      f[7] = '../../../../../canary/shadow'
      lines[at] = f.join('\t')
      writeFileSync(path, lines.join('\n'), {mode: 0o600})
    },
    // A new run is refused by the (valid) run journal's state, with exit 5 and its advice.
    modes: [['--undo'], ['--resume']],
    problem: /refusing the re-own journal .*is not a clean path inside the data directory/,
  },
  {
    name: 'a re-own journal that re-owns another directory',
    edit(j, dir, s) {
      const path = join(dir, 'reown.journal')
      const lines = readFileSync(path, 'utf8').split('\n')
      const header = JSON.parse(lines[0])
      header.data_dir = s.canary
      lines[0] = JSON.stringify(header)
      writeFileSync(path, lines.join('\n'), {mode: 0o600})
    },
    modes: [['--undo'], ['--resume']],
    problem: /refusing the re-own journal .*it re-owns .*canary.*not this node's data directory/,
  },
]

describe('planted journals fail closed', {skip}, () => {
  test('each planted journal, followed with ha restore --undo, --resume or a new run, is refused by name and changes nothing', (t) => {
    const s = setUp(t)
    for (const c of cases) {
      const dir = plant(s, (j, d) => c.edit(j, d, s))
      const before = snapshot(s.pair.secondary, ['var/opt/sun/xvm/.ha/ha.lock'])
      const canaryBefore = snapshot(s.canary)
      for (const mode of c.modes ?? [['--undo'], ['--resume'], []]) {
        const r = s.pair.restore(...mode, '--json')
        assert.equal(r.status, 1, `${c.name}: ha restore ${mode.join(' ')} exits 1: ${r.stdout}${r.stderr}`)
        assert.match(r.json!.error!.message, c.problem, `${c.name}: ha restore ${mode.join(' ')} names the problem`)
        assert.deepEqual(changedPaths(before, snapshot(s.pair.secondary, ['var/opt/sun/xvm/.ha/ha.lock'])), [], `${c.name}: the node's root is unchanged`)
        assert.deepEqual(changedPaths(canaryBefore, snapshot(s.canary)), [], `${c.name}: nothing beside the root was touched`)
      }

      rmSync(dir, {force: true, recursive: true})
    }

    // With the planted folder gone, the genuine run still undoes.
    const u = s.pair.restore('--undo', '--json')
    assert.equal(u.status, 0, u.stderr + u.stdout)
  })
})

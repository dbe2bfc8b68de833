import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, test} from 'node:test'
import {gzipSync} from 'node:zlib'

import {type Crafted, craftBackup, type RawMember, sha256, tarBytes} from '../helpers/craft-archive.js'
import {missingPrerequisite} from '../helpers/prereq.js'
import {changedPaths, dataDirOf, makePair, type Pair, placeArchive, savedSpecs, secondarySnapshot, version} from '../helpers/restore-fixture.js'

/**
 * Every archive here is hostile or broken in one way, crafted byte by byte. Each test runs
 * `ha restore` on the secondary and asserts what the operator would: it failed, the message
 * names the problem, and the secondary's tree (content, modes, owners, links) is exactly as it
 * was — nothing installed, no undo folder, no staging left behind.
 */
const skip = missingPrerequisite(['root'])

let counter = 0
function place(pair: Pair, crafted: Crafted, options: {manifestText?: string; tar?: Buffer; truncateTo?: number} = {}): string {
  let gz = gzipSync(options.tar ?? tarBytes(crafted, options))
  if (options.truncateTo !== undefined) gz = gz.subarray(0, options.truncateTo)
  const id = `20261122T03${String(++counter).padStart(4, '0')}Z-${String(counter).padStart(4, '0')}`
  placeArchive(pair, id, gz)
  return id
}

/** Runs the restore of a crafted archive and checks it failed closed; returns the error message. */
function refuses(t: Parameters<typeof makePair>[0], mutate: (c: Crafted, pair: Pair) => {manifestText?: string; tar?: Buffer; truncateTo?: number} | void, expected: RegExp, setupPair?: (pair: Pair) => void): string {
  const pair = makePair(t)
  setupPair?.(pair)
  const crafted = craftBackup(savedSpecs(pair), {productVersion: version})
  const options = mutate(crafted, pair) ?? {}
  const id = place(pair, crafted, options)
  const before = secondarySnapshot(pair)
  const r = pair.restore('--backup', id, '--json')
  const after = secondarySnapshot(pair)
  assert.equal(r.status, 1, `expected a refusal, got exit ${r.status}: ${r.stdout}${r.stderr}`)
  const message = r.json?.error?.message ?? ''
  assert.match(message, expected)
  assert.deepEqual(changedPaths(before, after), [], 'the secondary must be exactly as it was')
  assert.ok(!existsSync(join(dataDirOf(pair.secondary), '.ha/undo')), 'no undo folder: nothing was changed')
  assert.deepEqual(readdirSync(join(pair.secondary, 'var/tmp')), [], 'no staging directory left behind')
  return message
}

const file = (c: Crafted, path: string) => c.members.find((m) => m.name === `files${path}`)!
const entry = (c: Crafted, path: string) => c.manifest.entries.find((e) => e.path === path)!

describe('ha restore refuses a bad archive and changes nothing', {skip}, () => {
  test('a truncated archive', (t) => {
    refuses(t, (c) => {
      // A large incompressible member after the small ones, so the cut lands inside the saved data.
      const big = randomBytes(256 * 1024)
      c.manifest.entries.push({...entry(c, '/etc/opt/sun/xvm/satellite.conf'), member: 'files/etc/opt/sun/xvm/big.dat', path: '/etc/opt/sun/xvm/big.dat', sha256: sha256(big), size: big.length})
      c.members.push({body: big, name: 'files/etc/opt/sun/xvm/big.dat', type: 'File'})
      return {truncateTo: Math.floor(gzipSync(tarBytes(c)).length * 0.7)}
    }, /the archive is truncated/)
  })

  test('a checksum mismatch: one byte of a saved file differs from the manifest', (t) => {
    refuses(t, (c) => {
      const m = file(c, '/etc/opt/sun/xvm/satellite.conf')
      m.body = Buffer.from(m.body!.toString().replace('ctl-a', 'ctl-x'))
    }, /satellite\.conf: checksum mismatch/)
  })

  test('a member the manifest does not list', (t) => {
    refuses(t, (c) => {
      c.members.push({body: Buffer.from('* * * * * root /tmp/x\n'), name: 'files/etc/cron.d/extra', type: 'File'})
    }, /files\/etc\/cron\.d\/extra" is in the archive but not in the manifest/)
  })

  test('a manifest entry whose member is missing', (t) => {
    refuses(t, (c) => {
      c.members = c.members.filter((m) => m.name !== 'files/etc/opt/sun/xvm/satellite.conf')
    }, /satellite\.conf: in the manifest but its member .* is missing/)
  })

  test('a member whose size differs from the manifest', (t) => {
    refuses(t, (c) => {
      entry(c, '/etc/opt/sun/xvm/satellite.conf').size += 1
    }, /satellite\.conf" holds 27 bytes, the manifest says 28/)
  })

  test('a member whose type differs from the manifest', (t) => {
    refuses(t, (c) => {
      const m = file(c, '/etc/opt/sun/xvm/satellite.conf')
      m.type = 'Directory'
      m.body = undefined
    }, /satellite\.conf" is a directory, the manifest says file/)
  })

  test('a member with an absolute path', (t) => {
    refuses(t, (c) => {
      c.members.push({body: Buffer.from('evil\n'), name: '/etc/cron.d/evil', type: 'File'})
    }, /"\/etc\/cron\.d\/evil" has an absolute path/)
  })

  test('a member with ".." in its path', (t) => {
    refuses(t, (c) => {
      c.members.push({body: Buffer.from('evil\n'), name: 'files/../../../etc/cron.d/evil', type: 'File'})
    }, /contains "\.\."/)
  })

  test('a manifest entry with ".." in its path', (t) => {
    refuses(t, (c) => {
      const e = entry(c, '/etc/opt/sun/xvm/satellite.conf')
      e.path = '/etc/opt/sun/../../../../root/.ssh/authorized_keys'
      e.member = 'files/etc/opt/sun/../../../../root/.ssh/authorized_keys'
      file(c, '/etc/opt/sun/xvm/satellite.conf').name = e.member
    }, /path contains "\.\."/)
  })

  test('a symlink whose target climbs out of the tree', (t) => {
    refuses(t, (c) => {
      const e = entry(c, '/etc/opt/sun/xvm/localtime')
      e.target = '../../../../../../../etc/shadow'
      e.sha256 = sha256(e.target)
      file(c, '/etc/opt/sun/xvm/localtime').linkpath = e.target
    }, /symlink target "\.\.\/\.\.\/.*etc\/shadow" climbs out of the saved tree/)
  })

  test('a member written through a symlink the same archive creates', (t) => {
    refuses(t, (c) => {
      c.manifest.entries.push({...entry(c, '/etc/opt/sun/xvm/satellite.conf'), member: 'files/etc/opt/sun/xvm/localtime/evil', path: '/etc/opt/sun/xvm/localtime/evil'})
      c.members.push({...file(c, '/etc/opt/sun/xvm/satellite.conf'), name: 'files/etc/opt/sun/xvm/localtime/evil'})
    }, /parent \/etc\/opt\/sun\/xvm\/localtime is saved as a symlink/)
  })

  for (const [type, label] of [
    ['Link', 'hardlink'],
    ['CharacterDevice', 'character device'],
    ['BlockDevice', 'block device'],
    ['FIFO', 'FIFO'],
  ] as const) {
    test(`a ${label} member`, (t) => {
      refuses(t, (c) => {
        const member: RawMember = {name: 'files/etc/opt/sun/xvm/special', type}
        if (type === 'Link') member.linkpath = '../../../../etc/shadow'
        c.members.splice(3, 0, member)
      }, new RegExp(`special" is a ${label}: only files, directories and symlinks are restored`))
    })
  }

  test('a path nested deeper than the limit', (t) => {
    refuses(t, (c) => {
      const deep = `/etc/opt/sun/xvm/${Array.from({length: 60}, (_, i) => `d${i}`).join('/')}/f`
      c.manifest.entries.push({...entry(c, '/etc/opt/sun/xvm/satellite.conf'), member: `files${deep}`, path: deep})
      c.members.push({...file(c, '/etc/opt/sun/xvm/satellite.conf'), name: `files${deep}`})
    }, /levels deep \(limit 48\)/)
  })

  test('a decompression bomb: a manifest announcing more than the cap', (t) => {
    refuses(t, (c) => {
      entry(c, '/etc/opt/sun/xvm/satellite.conf').size = 5 * 1024 ** 3
    }, /refusing a decompression bomb/)
  })

  test('a decompression bomb: zeros after the last member, beyond what the manifest announces', (t) => {
    // 3 MiB here because `ha backup list` (which --backup goes through) reads each manifest with
    // node-tar, which slows down badly on long zero runs; test/unit/restore-extract.test.ts
    // feeds the extraction itself a 256 MiB tail.
    refuses(t, (c) => ({tar: Buffer.concat([tarBytes(c), Buffer.alloc(3 * 1024 * 1024)])}), /decompresses to more than \d+ bytes.*refusing a decompression bomb/)
  })

  test('manifest.json is not the first member', (t) => {
    refuses(t, (c) => ({tar: withoutManifestFirst(c)}), /first member is File "files\/etc\/passwd", not the file manifest\.json: not an ha backup archive/)
  })

  // The saved account files are the names the re-own maps by: an ambiguous one must stop the run.
  const badAccounts: Array<[string, 'group' | 'passwd', (text: string) => string, RegExp]> = [
    ['a duplicate user name', 'passwd', (s) => `${s}xvm:x:950:950::/:/bin/sh\n`, /saved \/etc\/passwd:\d+: name "xvm" appears twice/],
    ['a duplicate uid', 'passwd', (s) => `${s}other:x:901:901::/:/bin/sh\n`, /saved \/etc\/passwd:\d+: id 901 appears twice/],
    ['a duplicate group name', 'group', (s) => `${s}dba:x:990:\n`, /saved \/etc\/group:\d+: name "dba" appears twice/],
    ['a comment line', 'passwd', (s) => `# added by hand\n${s}`, /saved \/etc\/passwd:1: comment line/],
    ['a NIS + line', 'passwd', (s) => `${s}+::::::\n`, /saved \/etc\/passwd:\d+: NIS compat line/],
    ['too few fields', 'group', (s) => `${s}broken:x\n`, /saved \/etc\/group:\d+: expected 4 fields/],
  ]
  for (const [what, kind, edit, expected] of badAccounts) {
    test(`a saved ${kind} file with ${what}`, (t) => {
      refuses(t, (c) => {
        const path = `/etc/${kind}`
        const m = file(c, path)
        m.body = Buffer.from(edit(m.body!.toString()))
        entry(c, path).size = m.body.length
        entry(c, path).sha256 = sha256(m.body)
      }, expected)
    })
  }

  test("this host's own passwd with a NIS + line", (t) => {
    refuses(t, () => {}, /secondary\/etc\/passwd:\d+: NIS compat line/, (pair) => {
      writeFileSync(join(pair.secondary, 'etc/passwd'), `${readFileSync(join(pair.secondary, 'etc/passwd'), 'utf8')}+@netgroup::::::\n`)
    })
  })

  test('a saved owner with no account of that name on this host', (t) => {
    const message = refuses(t, () => {}, /user xvm does not exist on this host/, (pair) => {
      const passwd = readFileSync(join(pair.secondary, 'etc/passwd'), 'utf8')
      writeFileSync(join(pair.secondary, 'etc/passwd'), passwd.split('\n').filter((l) => !l.startsWith('xvm:')).join('\n'))
    })
    assert.doesNotMatch(message, /root/, 'never falls back to root')
  })

  test('a saved group with no group of that name on this host', (t) => {
    refuses(t, () => {}, /group xvm does not exist on this host/, (pair) => {
      const group = readFileSync(join(pair.secondary, 'etc/group'), 'utf8')
      writeFileSync(join(pair.secondary, 'etc/group'), group.split('\n').filter((l) => !l.startsWith('xvm:')).join('\n'))
    })
  })

  test('a directory on this host where the backup saved a file', (t) => {
    refuses(t, () => {}, /satellite\.conf is a directory, the backup saved a file there: move it away first/, (pair) => {
      const path = join(pair.secondary, 'etc/opt/sun/xvm/satellite.conf')
      rmSync(path)
      mkdirSync(path)
    })
  })

  test('a product version other than this host\'s, without --ignore-version', (t) => {
    refuses(t, (c) => {
      c.manifest.product_version = '2.2.0.1'
    }, /taken from product version 2\.2\.0\.1, this host runs 2\.1\.0\.1234/)
  })

  test('an archive whose manifest is not JSON', (t) => {
    refuses(t, () => ({manifestText: '{"format": "ha-backup/1", '}), /cannot be read: .*JSON/)
  })
})

function withoutManifestFirst(c: Crafted): Buffer {
  // The same members, with manifest.json moved after the first saved file.
  const manifest = Buffer.from(`${JSON.stringify(c.manifest, null, 1)}\n`)
  const moved: Crafted = {manifest: c.manifest, members: [c.members[0], {body: manifest, mode: 0o600, name: 'manifest.json', type: 'File'}, ...c.members.slice(1)]}
  const withFake = tarBytes(moved)
  // Drop the leading manifest.json tarBytes always writes (its header and body blocks).
  const skipBytes = 512 + Math.ceil(manifest.length / 512) * 512
  return withFake.subarray(skipBytes)
}


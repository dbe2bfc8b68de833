import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'

import {ha, repoRoot, tempDir} from '../helpers/cli.js'

/**
 * `guests:` in ha.yaml as an admin writes it, judged by `ha config check` (exit 2 naming the file,
 * the line and the field, with what to do; the file unchanged) and planned by `ha failover --plan`
 * and `ha rejoin --plan` (the exact virsh commands; without guests, the plan of today).
 */
// The example without its commented guests block (its words would be what the changes below replace).
const example = readFileSync(join(repoRoot, 'templates/ha.example.yaml'), 'utf8').replace(/\n# Virtual machines \(libvirt domains\)[\s\S]*$/, '\n')
const libvirt = (node: 'a' | 'b') => `    libvirt:\n      uri: qemu:///system\n      migration_uri: qemu+tcp://198.18.0.${node === 'a' ? 2 : 3}/system\n`
const withLibvirt = example.replace('    reboot_command: [/sbin/reboot]\n', `    reboot_command: [/sbin/reboot]\n${libvirt('a')}`).replace('  secondary:\n    hostname: ctl-b\n', `  secondary:\n    hostname: ctl-b\n${libvirt('b')}`)
const good = `${withLibvirt.replace('\n  mode: identity\n', '\n  mode: service\n')}
guests:
  - name: db1
    priority: 10
    move: live
    disks: shared
    apart: [db2]
  - name: db2
    move: restart
    shutdown: {mode: acpi, timeout: 90s}
  - name: app1
    priority: 5
    with: [cache1]
  - name: cache1
    disks: copy
    move: live
`

function check(t: Parameters<typeof tempDir>[0], text: string) {
  const dir = tempDir(t)
  const config = join(dir, 'ha.yaml')
  writeFileSync(config, text)
  return {config, r: ha(['config', 'check', '--config', config])}
}

/** The line of the last line holding the needle (or, as {first}, the first one in guests:). */
function lineOf(text: string, needle: string | {first: string}): number {
  const lines = text.split('\n')
  if (typeof needle === 'string') return lines.findLastIndex((l: string) => l.includes(needle)) + 1
  const from = lines.indexOf('guests:')
  return lines.findIndex((l, i) => i > from && l.includes(needle.first)) + 1
}

test('a guests section as documented is valid, and ha failover --plan lists the virsh commands that move them', (t) => {
  const {config, r} = check(t, good)
  assert.equal(r.status, 0, r.stdout + r.stderr)
  const plan = ha(['failover', '--plan', '--from', 'primary', '--config', config])
  assert.equal(plan.status, 0, plan.stderr)
  const steps = [...plan.stdout.matchAll(/^ *\d+\. (\S+) — /gm)].map((m) => m[1])
  assert.deepEqual(steps.slice(0, 5), ['preflight', 'confirm-fenced', 'final-backup', 'guests-leave', 'stop-services'])
  assert.deepEqual(steps.slice(-2), ['guests-start', 'verify'])
  assert.match(plan.stdout, /ctl-a \(primary\)\$ virsh -c qemu:\/\/\/system migrate --live --persistent db1 qemu\+tcp:\/\/198\.18\.0\.3\/system/)
  assert.match(plan.stdout, /ctl-a \(primary\)\$ virsh -c qemu:\/\/\/system migrate --live --persistent --copy-storage-all cache1 qemu\+tcp:\/\/198\.18\.0\.3\/system/)
  assert.doesNotMatch(plan.stdout, /migrate --live --persistent db2/, 'db2 moves by restart only')
  assert.match(plan.stdout, /ctl-a \(primary\)\$ virsh -c qemu:\/\/\/system shutdown --mode acpi db2/)
  assert.match(plan.stdout, /ctl-a \(primary\)\$ virsh -c qemu:\/\/\/system destroy db2/)
  assert.match(plan.stdout, /ctl-b \(secondary\)\$ virsh -c qemu:\/\/\/system define \/var\/lib\/ha\/guest-db1\.xml/)
  assert.match(plan.stdout, /ctl-b \(secondary\)\$ virsh -c qemu:\/\/\/system start db1/)
  const back = ha(['failover', '--plan', '--from', 'secondary', '--config', config])
  assert.match(back.stdout, /ctl-b \(secondary\)\$ virsh -c qemu:\/\/\/system migrate --live --persistent db1 qemu\+tcp:\/\/198\.18\.0\.2\/system/)
  const rejoin = ha(['rejoin', 'secondary', '--plan', '--config', config])
  assert.equal(rejoin.status, 0, rejoin.stderr)
  assert.match(rejoin.stdout, /guests-standby/)
  assert.match(rejoin.stdout, /ctl-b \(secondary\)\$ virsh -c qemu:\/\/\/system autostart --disable db1/)
})

test('without guests the plans are those of today: no guest step, no virsh', (t) => {
  const {config, r} = check(t, example)
  assert.equal(r.status, 0, r.stderr)
  const plan = ha(['failover', '--plan', '--from', 'primary', '--config', config])
  assert.doesNotMatch(plan.stdout, /guests-|virsh/)
  assert.doesNotMatch(ha(['rejoin', 'secondary', '--plan', '--config', config]).stdout, /guests-|virsh/)
})

/** Each: a change to the good config, the field named, the line it names, and the words that say what to do. */
const bad: Array<[string, (s: string) => string, string, string | {first: string}, RegExp]> = [
  ['an unknown guest in with', (s) => s.replace('with: [cache1]', 'with: [cache9]'), 'guests.2.with.0', 'with: [cache9]', /cache9 is not a guest of this config \(guests: db1, db2, app1, cache1\): add it to guests, or remove it from with/],
  ['an unknown guest in apart', (s) => s.replace('apart: [db2]', 'apart: [db3]'), 'guests.0.apart.0', 'apart: [db3]', /db3 is not a guest of this config/],
  ['a guest apart from itself', (s) => s.replace('apart: [db2]', 'apart: [db1]'), 'guests.0.apart.0', 'apart: [db1]', /db1 names itself.*remove it/],
  ['a guest twice', (s) => s.replace('  - name: cache1', '  - name: db2'), 'guests.3.name', '  - name: db2', /db2 is also guests\.1\.name: list each guest once/],
  ['with and apart at once', (s) => s.replace('with: [cache1]', 'with: [cache1]\n    apart: [cache1]'), 'guests.2.apart', 'apart: [cache1]', /app1 and cache1 must run apart, but with: puts them on one node.*remove one of the two rules/],
  [
    'apart from a guest it runs with through a chain of with',
    (s) => s.replace('    disks: copy\n', '    disks: copy\n    with: [db2]\n').replace('  - name: db2\n', '  - name: db2\n    apart: [app1]\n'),
    'guests.1.apart',
    'apart: [app1]',
    /app1 and db2 must run apart, but with: puts them on one node \(db2, app1, cache1 run together, through a chain of with\)/,
  ],
  ['apart rules that two nodes cannot hold', (s) => s.replace('apart: [db2]', 'apart: [db2, app1]').replace('  - name: db2\n', '  - name: db2\n    apart: [app1]\n'), 'guests', 'guests:', /the apart rules cannot all hold on two nodes/],
  ['a live move of disks on ha\'s storage', (s) => s.replace('    move: live\n    disks: shared\n', '    move: live\n    disks: storage\n'), 'guests.0.move', {first: 'move: live'}, /is live, but db1's disks are on ha's shared storage.*set move: restart, or disks: shared/],
  ['a live move to a node that reboots after the storage arrives', (s) => s.replace('\n  mode: service\n', '\n  mode: identity\n'), 'guests.0.move', {first: 'move: live'}, /failover\.mode is identity with failover\.reboot: the node taking over reboots after the storage arrives, which would kill db1/],
  [
    'copied disks under Pacemaker, where a guest moves by restart',
    (s) => s.replace('\n  manager: none\n', '\n  manager: pacemaker\n'),
    'guests.3.disks',
    'disks: copy',
    /is copy, but under Pacemaker cache1 moves by restart \(shut down in the group's stop, started in its start\), which copies nothing/,
  ],
  ['a live move without a migration URI', (s) => s.replace('      migration_uri: qemu+tcp://198.18.0.3/system\n', ''), 'nodes.secondary.libvirt', '    libvirt:', /nodes\.secondary\.libvirt\.migration_uri: is not set, but guest db1 moves live/],
  ['suspend is no way to move', (s) => s.replace('    move: restart\n', '    move: suspend\n'), 'guests.1.move', 'move: suspend', /must be live .* or restart .*; ha never suspends or pauses a guest/],
  ['a shutdown mode libvirt does not have', (s) => s.replace('mode: acpi', 'mode: poweroff'), 'guests.1.shutdown.mode', 'mode: poweroff', /must be acpi \(the power button\), agent \(the QEMU guest agent\) or signal/],
  ['a timeout that is no duration', (s) => s.replace('timeout: 90s', 'timeout: soon'), 'guests.1.shutdown.timeout', 'timeout: soon', /"soon" is not a duration/],
  ['a name virsh would not take', (s) => s.replace('name: app1', 'name: "app 1"'), 'guests.2.name', 'name: "app 1"', /must be a libvirt domain name/],
  ['a libvirt URI that is not one', (s) => s.replace('uri: qemu:///system\n      migration_uri: qemu+tcp://198.18.0.3', 'uri: system\n      migration_uri: qemu+tcp://198.18.0.3'), 'nodes.secondary.libvirt.uri', 'uri: system', /must be a libvirt URI as virsh -c takes it/],
]

for (const [name, change, field, needle, why] of bad) {
  test(`ha config check refuses ${name}, naming the field and what to do, and changes nothing`, (t) => {
    const text = change(good)
    assert.notEqual(text, good, 'the change applies')
    const {config, r} = check(t, text)
    assert.equal(r.status, 2, r.stdout + r.stderr)
    const line = lineOf(text, needle)
    assert.match(r.stderr, new RegExp(`${config}:${line}: ${field.replaceAll('.', '\\.')}[.:]`), r.stderr)
    assert.match(r.stderr, why)
    assert.equal(readFileSync(config, 'utf8'), text)
  })
}

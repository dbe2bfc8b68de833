import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {bootSectorPath, guestDomainXml} from '../../src/lab/guest-domain.js'
import {libvirtUri, parseVirshList} from '../../src/lab/guests.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * The guest lab's pieces that need no lab: the committed boot sector is what its source assembles
 * to, the domain XML is one libvirt's own schema accepts, and virsh's table is read as it prints it.
 */
describe('the lab guest', () => {
  it('lab/heartbeat.bin is exactly what nasm makes of lab/heartbeat.asm: one 512-byte boot sector', {skip: missingPrerequisite(['nasm'])}, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ha-guest-'))
    t.after(() => rm(dir, {force: true, recursive: true}))
    const out = join(dir, 'heartbeat.bin')
    const r = spawnSync('nasm', ['-f', 'bin', '-o', out, bootSectorPath.replace(/\.bin$/, '.asm')], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
    const committed = await readFile(bootSectorPath)
    assert.deepEqual(await readFile(out), committed, 'rebuild it with: nasm -f bin -o lab/heartbeat.bin lab/heartbeat.asm')
    assert.equal(committed.length, 512)
    assert.deepEqual([...committed.subarray(510)], [0x55, 0xaa], 'the BIOS boot signature')
  })

  it('its domain XML is valid by libvirt\'s schema: TCG, the shared disk read-only, COM1 to a file', {skip: missingPrerequisite(['libvirt'])}, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ha-guest-'))
    t.after(() => rm(dir, {force: true, recursive: true}))
    const xml = guestDomainXml('heartbeat1')
    await writeFile(join(dir, 'domain.xml'), xml)
    const r = spawnSync('virt-xml-validate', [join(dir, 'domain.xml'), 'domain'], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.match(xml, /^<domain type='qemu'>/)
    assert.match(xml, /<source file='\/var\/lib\/libvirt\/images\/shared\/heartbeat\.img'\/>\s*<target dev='vda' bus='virtio'\/>\s*<readonly\/>/)
    assert.match(xml, /<serial type='file'>\s*<source path='\/var\/log\/libvirt\/qemu\/heartbeat1\.serial\.log'\/>/)
    assert.throws(() => guestDomainXml("x'/><evil"), /not a lab guest name/)
  })

  it('reads virsh list --all, running and shut off, and an empty list', () => {
    const table = ' Id   Name         State\n-----------------------------\n 3    heartbeat1   running\n -    other        shut off\n\n'
    assert.deepEqual(parseVirshList(table), [
      {id: 3, name: 'heartbeat1', state: 'running'},
      {id: null, name: 'other', state: 'shut off'},
    ])
    assert.deepEqual(parseVirshList(' Id   Name   State\n--------------------\n\n'), [])
    assert.equal(libvirtUri('secondary'), 'qemu+tcp://198.18.0.3/system')
  })
})

import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {guestSchema} from '../../src/config/schema.js'
import {nodeGuestsFrom} from '../../src/guests/guest-view.js'

/**
 * A node's room for hugepage-backed guests: the kernel's pool (virsh freepages) is shared by
 * everything on the host, and a hugetlbfs mounted with size= gives QEMU no more than its size.
 * The smaller of the two is what a favoured guest can count on (the guest lab's nodes have 48
 * free pages in the pool and 16 on ctl-b's mount: QEMU refused the third 16 MiB guest there).
 */
const config = {guests: [guestSchema.parse({name: 'web'})], nodes: {primary: {}, secondary: {}}} as never
const ok = (stdout: string) => ({code: 0, stderr: Buffer.alloc(0), stdout: Buffer.from(stdout)})
const failed = {code: 1, stderr: Buffer.from("stat: cannot read file system information for '/dev/hugepages': No such file or directory"), stdout: Buffer.alloc(0)}
const answers = (hugetlbfs: ReturnType<typeof ok> | typeof failed) =>
  new Map([
    ['guests:list', ok(' Id   Name   State\n-----------------------\n')],
    ['guests:freepages', ok('Node 0:\n4KiB: 1000\n2048KiB: 48\n1048576KiB: 0\n')],
    ['guests:hugetlbfs', hugetlbfs],
  ])

describe('free huge pages for a guest', () => {
  it('a hugetlbfs with less room than the pool: the mount decides', () => {
    assert.equal(nodeGuestsFrom(config, 'secondary', answers(ok('16 2097152\n'))).freeHugepagesKiB, 16 * 2048)
  })

  it('a mount with more room than the pool (no size=, or a bigger one): the pool decides', () => {
    assert.equal(nodeGuestsFrom(config, 'secondary', answers(ok('512 2097152\n'))).freeHugepagesKiB, 48 * 2048)
  })

  it('no hugetlbfs at /dev/hugepages: the pool as virsh freepages says', () => {
    assert.equal(nodeGuestsFrom(config, 'secondary', answers(failed)).freeHugepagesKiB, 48 * 2048)
  })

  it('virsh freepages unread or without 2 MiB pages is not "none free": the mount decides alone, or, neither read, it is not known', () => {
    const refused = {code: 1, stderr: Buffer.from('error: Operation not supported: page info is not supported on this platform'), stdout: Buffer.alloc(0)}
    const without = (freepages: ReturnType<typeof ok> | typeof refused, hugetlbfs: ReturnType<typeof ok> | typeof failed) => new Map([...answers(hugetlbfs), ['guests:freepages', freepages]])
    assert.equal(nodeGuestsFrom(config, 'secondary', without(refused, ok('16 2097152\n'))).freeHugepagesKiB, 16 * 2048)
    assert.equal(nodeGuestsFrom(config, 'secondary', without(refused, failed)).freeHugepagesKiB, undefined)
    assert.equal(nodeGuestsFrom(config, 'secondary', without(ok('Node 0:\n4KiB: 1000\n1048576KiB: 4\n'), failed)).freeHugepagesKiB, undefined)
    // A stat that printed something else is not read either.
    assert.equal(nodeGuestsFrom(config, 'secondary', without(refused, ok('sixteen\n'))).freeHugepagesKiB, undefined)
  })
})

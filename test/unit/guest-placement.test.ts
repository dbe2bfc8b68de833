import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {guestSchema} from '../../src/config/schema.js'
import {withGroups} from '../../src/guests/affinity.js'
import {type PlacementInput, placeGuests} from '../../src/guests/placement.js'

/**
 * Where the guests go on the node taking over: the decisions an admin reads in the failover's
 * progress and journal (start, keep, shed, leave off, and why), by priority, affinity and the
 * target's free memory as libvirt reports it.
 */
const guest = (name: string, more: Record<string, unknown> = {}) => guestSchema.parse({name, ...more})
const MiB = 1024

function place(input: Partial<PlacementInput> & Pick<PlacementInput, 'guests'>): Array<[string, string]> {
  return placeGuests({arriving: [], free: {hugepagesKiB: 0, memoryKiB: 1024 * MiB}, memory: {}, running: [], ...input}).map((d) => [d.guest, d.action])
}

describe('guest placement', () => {
  it('starts every arriving guest that fits, favoured first', () => {
    const guests = [guest('low', {priority: 1}), guest('high', {priority: 10}), guest('mid', {priority: 5})]
    const memory = {high: {hugepages: false, kib: 100 * MiB}, low: {hugepages: false, kib: 100 * MiB}, mid: {hugepages: false, kib: 100 * MiB}}
    assert.deepEqual(place({arriving: ['low', 'high', 'mid'], guests, memory}), [
      ['high', 'start'],
      ['mid', 'start'],
      ['low', 'start'],
    ])
  })

  it('sheds the least favoured running guest, and only as many as the favoured one needs', () => {
    const guests = [guest('db', {priority: 10}), guest('batch', {priority: 1}), guest('test', {priority: 0}), guest('web', {priority: 5})]
    const memory = {batch: {hugepages: false, kib: 300 * MiB}, db: {hugepages: false, kib: 500 * MiB}, test: {hugepages: false, kib: 300 * MiB}, web: {hugepages: false, kib: 300 * MiB}}
    const decisions = placeGuests({arriving: ['db'], free: {hugepagesKiB: 0, memoryKiB: 300 * MiB}, guests, memory, running: ['batch', 'test', 'web']})
    assert.deepEqual(
      decisions.map((d) => [d.guest, d.action]),
      [
        ['test', 'shed'],
        ['db', 'start'],
        ['web', 'keep'],
        ['batch', 'keep'],
      ],
    )
    assert.match(decisions.find((d) => d.guest === 'test')!.why, /to make room for db \(priority 10 over 0\)/)
    assert.match(decisions.find((d) => d.guest === 'db')!.why, /500 MiB of memory, once test is shut down/)
  })

  it('sheds nothing for a guest that would not fit even after every less favoured one is gone, and leaves it off', () => {
    const guests = [guest('huge', {priority: 10}), guest('small', {priority: 1}), guest('vip', {priority: 20})]
    const memory = {huge: {hugepages: false, kib: 4096 * MiB}, small: {hugepages: false, kib: 100 * MiB}, vip: {hugepages: false, kib: 100 * MiB}}
    const decisions = placeGuests({arriving: ['huge'], free: {hugepagesKiB: 0, memoryKiB: 200 * MiB}, guests, memory, running: ['small', 'vip']})
    assert.deepEqual(
      decisions.map((d) => [d.guest, d.action]),
      [
        ['vip', 'keep'],
        ['huge', 'leave-off'],
        ['small', 'keep'],
      ],
    )
    assert.match(decisions[1].why, /needs 4096 MiB of memory; the target has 200 MiB of memory and 0 MiB of huge pages free, and no more than 300 MiB of memory/)
  })

  it('never sheds a guest as favoured as the one arriving', () => {
    const guests = [guest('a', {priority: 5}), guest('b', {priority: 5})]
    const memory = {a: {hugepages: false, kib: 200 * MiB}, b: {hugepages: false, kib: 200 * MiB}}
    assert.deepEqual(place({arriving: ['a'], free: {hugepagesKiB: 0, memoryKiB: 100 * MiB}, guests, memory, running: ['b']}), [
      ['b', 'keep'],
      ['a', 'leave-off'],
    ])
  })

  it('counts a hugepage-backed guest against the free huge pages, not the free memory', () => {
    const guests = [guest('fav', {priority: 10}), guest('other', {priority: 1})]
    const memory = {fav: {hugepages: true, kib: 64 * MiB}, other: {hugepages: true, kib: 64 * MiB}}
    const decisions = place({arriving: ['fav'], free: {hugepagesKiB: 32 * MiB, memoryKiB: 100_000 * MiB}, guests, memory, running: ['other']})
    assert.deepEqual(decisions, [
      ['other', 'shed'],
      ['fav', 'start'],
    ])
  })

  it('apart: the less favoured of two is shed if it runs there, left off if it was arriving', () => {
    const guests = [guest('primary-db', {apart: ['replica-db'], priority: 10}), guest('replica-db', {priority: 1})]
    assert.deepEqual(place({arriving: ['primary-db'], guests, running: ['replica-db']}), [
      ['replica-db', 'shed'],
      ['primary-db', 'start'],
    ])
    assert.deepEqual(place({arriving: ['replica-db'], guests, running: ['primary-db']}), [
      ['primary-db', 'keep'],
      ['replica-db', 'leave-off'],
    ])
    const both = placeGuests({arriving: ['primary-db', 'replica-db'], free: {hugepagesKiB: 0, memoryKiB: 1024 * MiB}, guests, memory: {}, running: []})
    assert.deepEqual(both.map((d) => [d.guest, d.action]), [
      ['primary-db', 'start'],
      ['replica-db', 'leave-off'],
    ])
    assert.match(both[1].why, /apart from primary-db, which is favoured \(priority 10 over 1\)/)
  })

  it('with: guests that must share a node start together, as favoured as the most favoured of them, or not at all', () => {
    const guests = [guest('app', {priority: 1, with: ['cache']}), guest('cache'), guest('other', {priority: 3})]
    const memory = {app: {hugepages: false, kib: 100 * MiB}, cache: {hugepages: false, kib: 100 * MiB}, other: {hugepages: false, kib: 100 * MiB}}
    assert.deepEqual(place({arriving: ['app', 'cache', 'other'], free: {hugepagesKiB: 0, memoryKiB: 250 * MiB}, guests, memory}), [
      ['other', 'start'],
      ['app', 'leave-off'],
      ['cache', 'leave-off'],
    ])
    assert.deepEqual(withGroups([guest('a', {with: ['b']}), guest('b'), guest('c', {with: ['b']}), guest('d')]), [['a', 'b', 'c'], ['d']])
  })

  it('free huge pages not known (virsh freepages and the hugetlbfs unread) do not stop a start, nor shed anything', () => {
    const guests = [guest('fav', {priority: 10}), guest('low', {priority: 1})]
    const memory = {fav: {hugepages: true, kib: 64 * MiB}, low: {hugepages: true, kib: 64 * MiB}}
    const decisions = placeGuests({arriving: ['fav'], free: {memoryKiB: 100 * MiB}, guests, memory, running: ['low']})
    assert.deepEqual(decisions.map((d) => [d.guest, d.action, d.why]), [
      ['fav', 'start', '64 MiB of huge pages'],
      ['low', 'keep', 'runs there'],
    ])
  })

  it('free memory not known while the huge pages are short: a with-group needing both sheds for its huge pages, and is not left off for memory nobody read', () => {
    const guests = [guest('app', {priority: 10, with: ['cache']}), guest('cache'), guest('low', {priority: 1})]
    const memory = {app: {hugepages: true, kib: 16 * MiB}, cache: {hugepages: false, kib: 100 * MiB}, low: {hugepages: true, kib: 16 * MiB}}
    const decisions = placeGuests({arriving: ['app', 'cache'], free: {hugepagesKiB: 0}, guests, memory, running: ['low']})
    assert.deepEqual(decisions.map((d) => [d.guest, d.action]), [
      ['low', 'shed'],
      ['app', 'start'],
      ['cache', 'start'],
    ])
    // And one that cannot fit even so says what was not known.
    const big = placeGuests({arriving: ['app', 'cache'], free: {hugepagesKiB: 0}, guests, memory: {...memory, app: {hugepages: true, kib: 64 * MiB}}, running: ['low']})
    assert.equal(big[0].action, 'leave-off')
    assert.equal(big[0].why, 'needs 100 MiB of memory and 64 MiB of huge pages; the target has unknown memory and 0 MiB of huge pages free, and no more than unknown memory and 16 MiB of huge pages after shutting down every less favoured guest')
  })

  it('sheds only guests that free what is short: one with plain memory is kept when huge pages are short', () => {
    const guests = [guest('fav', {priority: 10}), guest('plain', {priority: 0}), guest('low', {priority: 1})]
    const memory = {fav: {hugepages: true, kib: 16 * MiB}, low: {hugepages: true, kib: 16 * MiB}, plain: {hugepages: false, kib: 512 * MiB}}
    const decisions = placeGuests({arriving: ['fav'], free: {hugepagesKiB: 0, memoryKiB: 100 * MiB}, guests, memory, running: ['plain', 'low']})
    assert.deepEqual(decisions.map((d) => [d.guest, d.action]), [
      ['low', 'shed'],
      ['fav', 'start'],
      ['plain', 'keep'],
    ])
    assert.equal(decisions.find((d) => d.guest === 'fav')!.why, '16 MiB of huge pages, once low is shut down')
  })

  it('a guest backed by huge pages of another size (1 GiB) is not counted against the free 2 MiB pages: it starts, sheds nothing, and says so', () => {
    const guests = [guest('big', {priority: 10}), guest('low', {priority: 1})]
    const memory = {big: {hugepages: true, kib: 4096 * MiB, pageKiB: 1024 * MiB}, low: {hugepages: true, kib: 16 * MiB}}
    const decisions = placeGuests({arriving: ['big'], free: {hugepagesKiB: 0, memoryKiB: 100 * MiB}, guests, memory, running: ['low']})
    assert.deepEqual(decisions.map((d) => [d.guest, d.action]), [
      ['big', 'start'],
      ['low', 'keep'],
    ])
    assert.equal(decisions[0].why, "not counted: big's 4096 MiB of 1 GiB huge pages (ha counts free 2 MiB pages only; virsh start says whether they fit)")
    // Naming the default size is the default size: counted.
    const named = placeGuests({arriving: ['big'], free: {hugepagesKiB: 0, memoryKiB: 100 * MiB}, guests, memory: {...memory, big: {hugepages: true, kib: 16 * MiB, pageKiB: 2048}}, running: ['low']})
    assert.deepEqual(named.map((d) => [d.guest, d.action]), [
      ['low', 'shed'],
      ['big', 'start'],
    ])
  })

  it('free memory libvirt did not report does not stop a start', () => {
    assert.deepEqual(place({arriving: ['x'], free: {hugepagesKiB: 0}, guests: [guest('x')], memory: {x: {hugepages: false, kib: 1 << 30}}}), [['x', 'start']])
  })
})

import type {GuestConfig} from '../config/schema.js'
import {apartPairs, withGroups} from './affinity.js'

/**
 * Where the guests go on the node taking over, decided before anything acts (pure: the same
 * decision prints in ha check and ha failover --plan's notes, and drives the step).
 *
 * Units are with-groups (they start together or not at all). By priority, highest first (ties: a
 * unit already running there first, then by name):
 * - apart: of two units that must not share a node, the less favoured one does not run on the
 *   target: shed (shut down) if it runs there, left off if it was to arrive;
 * - memory: an arriving unit needs its guests' memory free on the target (huge pages for a
 *   hugepage-backed guest), as libvirt reports it; when it does not fit, less favoured running
 *   units are shed, least favoured first, until it fits. If shedding every less favoured one
 *   would still not make room, nothing is shed for it and it is left off.
 * A guest ha does not manage is never touched; its memory is simply not free.
 */

export interface PlacementInput {
  guests: GuestConfig[]
  /** Configured guests to start on the target (left the source, not running on the target). */
  arriving: string[]
  /** Configured guests that run on the target now. */
  running: string[]
  /**
   * Each guest's memory (KiB, from its definition), whether it needs huge pages, and of which size
   * when its definition names one (pageKiB; undefined: the host's default, 2 MiB here).
   */
  memory: Record<string, {hugepages: boolean; kib?: number; pageKiB?: number}>
  /** Free on the target, as libvirt reports it; either undefined: not known (then it does not stop a start, as virsh start will say). */
  free: {hugepagesKiB?: number; memoryKiB?: number}
}

export type PlacementAction = 'keep' | 'leave-off' | 'shed' | 'start'

export interface PlacementDecision {
  guest: string
  action: PlacementAction
  why: string
}

interface Unit {
  names: string[]
  priority: number
  running: boolean
  need: Usage
}

/** The huge page size ha counts free (virsh freepages' 2048KiB, the hugetlbfs at /dev/hugepages). */
export const countedPageKiB = 2048

interface Usage {
  hugepages: number
  memory: number
  /** Guests backed by huge pages of another size (1 GiB): ha does not count those, so they stop nothing. */
  uncounted: string[]
}

function units(input: PlacementInput): Unit[] {
  const present = new Set([...input.arriving, ...input.running])
  const byName = new Map(input.guests.map((g) => [g.name, g]))
  return withGroups(input.guests)
    .map((group) => group.filter((name) => present.has(name)))
    .filter((names) => names.length > 0)
    .map((names) => {
      const need = usageOf(input, names.filter((n) => input.arriving.includes(n)))
      return {names, need, priority: Math.max(...names.map((n) => byName.get(n)!.priority)), running: names.every((n) => input.running.includes(n))}
    })
    .sort((a, b) => b.priority - a.priority || Number(b.running) - Number(a.running) || a.names[0].localeCompare(b.names[0]))
}

/** What guests use (running) or need (arriving): huge pages for the hugepage-backed ones, memory for the others, in KiB. */
function usageOf(input: PlacementInput, names: string[]): Usage {
  const use: Usage = {hugepages: 0, memory: 0, uncounted: []}
  for (const name of names) {
    const m = input.memory[name]
    if (m?.hugepages && m.pageKiB !== undefined && m.pageKiB !== countedPageKiB) use.uncounted.push(`${name}'s ${m.kib === undefined ? '' : `${mib(m.kib)} of `}${pageText(m.pageKiB)} huge pages`)
    else if (m?.hugepages) use.hugepages += m.kib ?? 0
    else use.memory += m?.kib ?? 0
  }

  return use
}

const pageText = (kib: number) => (kib % (1024 * 1024) === 0 ? `${kib / (1024 * 1024)} GiB` : kib % 1024 === 0 ? `${kib / 1024} MiB` : `${kib} KiB`)

const label = (unit: Unit) => (unit.names.length === 1 ? unit.names[0] : `${unit.names.join('+')} (with each other)`)
const mib = (kib: number) => `${Math.round(kib / 1024)} MiB`

export function placeGuests(input: PlacementInput): PlacementDecision[] {
  const all = units(input)
  const apart = apartPairs(input.guests)
  const conflicts = (a: Unit, b: Unit) => apart.some(([x, y]) => (a.names.includes(x) && b.names.includes(y)) || (a.names.includes(y) && b.names.includes(x)))
  const out = new Map<Unit, {action: PlacementAction; why: string}>()
  const free = {hugepages: input.free.hugepagesKiB, memory: input.free.memoryKiB}
  const usage = (unit: Unit) => usageOf(input, unit.names)
  const shed = (unit: Unit, why: string) => {
    out.set(unit, {action: 'shed', why})
    const freed = usage(unit)
    if (free.hugepages !== undefined) free.hugepages += freed.hugepages
    if (free.memory !== undefined) free.memory += freed.memory
  }

  const take = (unit: Unit, why: string) => {
    out.set(unit, {action: 'start', why})
    if (free.hugepages !== undefined) free.hugepages -= unit.need.hugepages
    if (free.memory !== undefined) free.memory -= unit.need.memory
  }

  for (const unit of all) {
    if (out.get(unit)?.action === 'shed') continue
    const winner = all.find((other) => other !== unit && conflicts(unit, other) && (out.get(other)?.action === 'start' || out.get(other)?.action === 'keep'))
    if (winner) {
      if (unit.running) shed(unit, `apart from ${label(winner)}, which is favoured (priority ${winner.priority} over ${unit.priority})`)
      else out.set(unit, {action: 'leave-off', why: `apart from ${label(winner)}, which is favoured (priority ${winner.priority} over ${unit.priority}) and runs there`})
      continue
    }

    if (unit.running) {
      out.set(unit, {action: 'keep', why: 'runs there'})
      continue
    }

    const fits = () => (free.hugepages === undefined || unit.need.hugepages <= free.hugepages) && (free.memory === undefined || unit.need.memory <= free.memory)
    if (fits()) {
      take(unit, neededText(unit))
      continue
    }

    // Shedding: the less favoured units running there, least favoured first, only if that makes room.
    const candidates = all.filter((other) => other.priority < unit.priority && other.running && out.get(other)?.action !== 'shed').reverse()
    // What shedding every candidate would leave free (a kind not known stays not known: it stops nothing).
    const room = candidates.reduce(
      (sum, other) => ({hugepages: sum.hugepages === undefined ? undefined : sum.hugepages + usage(other).hugepages, memory: sum.memory === undefined ? undefined : sum.memory + usage(other).memory}),
      {hugepages: free.hugepages, memory: free.memory},
    )
    if ((room.hugepages !== undefined && unit.need.hugepages > room.hugepages) || (room.memory !== undefined && unit.need.memory > room.memory)) {
      out.set(unit, {action: 'leave-off', why: `needs ${neededText(unit)}; the target has ${freeText(free)} free, ${candidates.length > 0 ? `and no more than ${freeText(room)} after shutting down every less favoured guest` : 'and runs no less favoured guest to shut down'}`})
      continue
    }

    const shedFor: string[] = []
    for (const other of candidates) {
      if (fits()) break
      // Only a guest that frees what is short: shutting down one with plain memory makes no huge pages.
      const freed = usage(other)
      const short = {hugepages: free.hugepages !== undefined && unit.need.hugepages > free.hugepages, memory: free.memory !== undefined && unit.need.memory > free.memory}
      if (!(short.hugepages && freed.hugepages > 0) && !(short.memory && freed.memory > 0)) continue
      shed(other, `to make room for ${label(unit)} (priority ${unit.priority} over ${other.priority})`)
      shedFor.push(label(other))
    }

    take(unit, `${neededText(unit)}, once ${shedFor.join(', ')} ${shedFor.length === 1 ? 'is' : 'are'} shut down`)
  }

  // Sheds first (they make the room), then starts and keeps by priority.
  const decisions = all.flatMap((unit) => unit.names.map((guest) => ({guest, ...out.get(unit)!})))
  return [...decisions.filter((d) => d.action === 'shed').reverse(), ...decisions.filter((d) => d.action !== 'shed')]
}

function neededText(unit: Unit): string {
  const parts = [...(unit.need.memory > 0 ? [`${mib(unit.need.memory)} of memory`] : []), ...(unit.need.hugepages > 0 ? [`${mib(unit.need.hugepages)} of huge pages`] : [])]
  const counted = parts.length > 0 ? parts.join(' and ') : unit.need.uncounted.length > 0 ? '' : 'no memory known'
  const uncounted = unit.need.uncounted.length > 0 ? `not counted: ${unit.need.uncounted.join(', ')} (ha counts free ${pageText(countedPageKiB)} pages only; virsh start says whether they fit)` : ''
  return [counted, uncounted].filter(Boolean).join('; ')
}

function freeText(free: {hugepages?: number; memory?: number}): string {
  return `${free.memory === undefined ? 'unknown memory' : `${mib(free.memory)} of memory`} and ${free.hugepages === undefined ? 'unknown huge pages' : `${mib(free.hugepages)} of huge pages`}`
}

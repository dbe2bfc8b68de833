import type {NodeName} from '../../config/schema.js'
import type {NodeFacts} from '../types.js'
import type {CheckItem} from '../types.js'
import {whyNoAnswer} from './reachability.js'

/** Beyond this, logs and backup ages disagree enough to mislead someone comparing them at 3 a.m. */
export const maxClockSkewS = 2

/**
 * Clock skew between the nodes, a warning only: ha never decides anything by comparing clocks
 * across hosts. Each node's clock was read at a time known to within half its round trip;
 * skew is only reported when it exceeds the threshold beyond that uncertainty.
 */
export function clockSkewCheck(facts: Record<NodeName, NodeFacts>): CheckItem {
  const a = facts.primary.clock
  const b = facts.secondary.clock
  const base = {id: 'clock_skew', title: 'Clock skew between nodes'}
  if (!a || !b) {
    return {...base, actions: ['see the reachable rows'], evidence: {}, status: 'warn', summary: `cannot compare clocks: ${whyNoAnswer(facts, !a ? 'primary' : 'secondary')}`}
  }

  const skew = b.offset_s - a.offset_s
  const uncertainty = a.uncertainty_s + b.uncertainty_s
  const evidence = {max_skew_s: maxClockSkewS, skew_s: round(skew), uncertainty_s: round(uncertainty)}
  const summary = `secondary is ${Math.abs(skew).toFixed(2)}s ${skew >= 0 ? 'ahead of' : 'behind'} primary (±${uncertainty.toFixed(2)}s)`
  const skewed = Math.abs(skew) - uncertainty > maxClockSkewS
  return {...base, ...(skewed ? {actions: ['run NTP (chrony or systemd-timesyncd) on both nodes']} : {}), evidence, status: skewed ? 'warn' : 'pass', summary}
}

const round = (n: number) => Math.round(n * 1000) / 1000

import type {Config, NodeName} from '../config/schema.js'
import {failoverSteps} from '../steps/index.js'
import {describeAction, type PlannedStep} from '../steps/step.js'

export function nodeLabels(config: Config): Record<NodeName, string> {
  return {primary: `${config.nodes.primary.hostname} (primary)`, secondary: `${config.nodes.secondary.hostname} (secondary)`}
}

/** The runbook for one direction, from the very step objects that run it. */
export function planFailover(config: Config, from: NodeName, to: NodeName): PlannedStep[] {
  const ctx = {config, from, to}
  const labels = nodeLabels(config)
  return failoverSteps(config).map((step) => {
    const on = step.on(ctx)
    return {
      actions: step.actions(ctx).map((a) => describeAction(a, labels)),
      id: step.id,
      on: on === 'here' ? 'here' : labels[on],
      title: step.title,
    }
  })
}

export function renderPlan(plan: PlannedStep[]): string {
  const out: string[] = []
  for (const [i, step] of plan.entries()) {
    out.push(`${String(i + 1).padStart(2)}. ${step.id} — ${step.title}`, `    on: ${step.on}`)
    for (const a of step.actions) out.push(`      ${a}`)
  }

  return out.join('\n')
}

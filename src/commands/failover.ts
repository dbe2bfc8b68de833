import {HaCommand} from '../cli/base-command.js'
import {yesFlag} from '../cli/flags.js'
import {Flags} from '../cli/oclif.js'
import {requireNeeds} from '../config/needs.js'
import type {Config, NodeName} from '../config/schema.js'
import {ConfigError, ExitCode, HaError} from '../core/errors.js'
import type {PlanPrepared, Prepared, UncheckedNode} from '../failover/prepare.js'
import type {GuestRow} from '../guests/report.js'
import type {FailoverNodes} from '../pair/nodes.js'
import type {PlannedStep} from '../steps/step.js'

export default class Failover extends HaCommand<typeof Failover> {
  static needsRoot = "it takes the lock in the data directory and runs the takeover's steps as root"

  static description = `The guided failover (seed 001): from the active node (as the epoch on the shared storage says) to the standby, step by step: preflight (ha check), final backup, stop the services, release the service IPs (runtime and boot configuration, proven by ip -j addr and arping -D) and the storage, attach it to the standby and bump the epoch, ha restore --takeover there, reboot it, take the service IPs, start the services, verify. Every step is journalled; a step whose outcome already holds is skipped, so an interrupted run continues with --resume. Failing back is the same command once the repaired node is a proper standby (ha rejoin).

An active node that does not answer ssh is not taken over until it is confirmed fenced (typed at the terminal, or --fenced NODE), and never while its service IP answers ARP.

Under cluster.manager: pacemaker it is a switchover through Pacemaker instead, never the manual steps: preflight (quorum, both nodes online, the target not in standby, no failed action or constraint in the way, version parity), crm_resource --move, a bounded wait until crm_mon shows the group on the other node, verify on the wire, and crm_resource --clear always, after a failure or Ctrl-C too. --resume, --abort and --fenced are refused there (docs/cluster-guided.md).`

  static examples = [
    {command: '<%= config.bin %> failover --plan', description: 'Print the runbook: every step and the exact commands it runs'},
    {command: '<%= config.bin %> failover', description: 'At a terminal: shows the plan and asks you to type the name of the node taking over'},
    {command: '<%= config.bin %> failover --yes --json', description: 'From a script: one JSON event per step, then the envelope'},
    {command: '<%= config.bin %> failover --resume', description: 'Continue a failover that stopped (exit 5)'},
    {command: '<%= config.bin %> failover --yes --fenced primary', description: 'The active node is dead and you made sure it is off'},
  ]

  static flags = {
    abort: Flags.boolean({description: 'stop the failover in progress and put the active node back as it was (only before the storage moved)', exclusive: ['resume', 'plan']}),
    forget: Flags.string({
      description: 'let go of a run that can no longer go on (its admin host died, or it lost the race): its claim on the nodes is removed and written down there, and this machine\'s journal of it ends; asks first (or --yes)',
      exclusive: ['abort', 'resume', 'plan', 'fenced', 'from'],
      helpValue: 'RUN',
    }),
    fenced: Flags.string({description: 'confirm that this node (the active one, by node name or hostname) is fenced: powered off or cut off'}),
    from: Flags.string({description: 'with --plan: print the plan for this direction without reaching the nodes', options: ['primary', 'secondary']}),
    plan: Flags.boolean({description: 'print the runbook (every step and its commands) and change nothing; a node that cannot be reached (or refuses its host key or login) is named and the plan printed from the config, exit 3'}),
    resume: Flags.boolean({description: 'continue the failover that stopped, re-checking every step'}),
    yes: yesFlag,
  }

  static summary = 'Fail over from the active node to the standby, step by step (resumable)'

  private leaving = false
  /** A switchover through Pacemaker runs: its clear must not be cut short. */
  private switching = false
  /** The journal exists from here on: a stop is resumable. */
  private running = false

  /**
   * A second Ctrl-C does not wait for the step to end, but it does not cut a journal line either:
   * the record being written is finished, then exit 5 with the command that continues (resume
   * re-checks the step that was cut short).
   */
  protected override interruptedAgain(): void {
    // The switchover clears its move constraint on the way out, after any Ctrl-C: it is not cut short.
    if (this.switching) return this.reporter.notice('removing the move constraint first (crm_resource --clear), then stopping')
    if (!this.running) return super.interruptedAgain()
    if (this.leaving) return
    this.leaving = true
    void (async () => {
      const {sealJournals} = await import('../failover/journal.js')
      await sealJournals(5000)
      const {FailoverStopped} = await import('../failover/errors.js')
      process.exit(this.reporter.error(new FailoverStopped('interrupted twice: stopped at once, in the middle of a step; the journal has every step so far')))
    })()
  }

  /**
   * --plan: with --from, that direction from the config alone (asked for: exit 0); otherwise the
   * roles as far as the nodes answer, and each node not checked named (then exit 3).
   */
  private async printPlan(config: Config, from: NodeName | undefined): Promise<unknown> {
    const {nodeLabels, planFailover, renderPlan} = await import('../failover/plan.js')
    const labels = nodeLabels(config)
    if (from) {
      const to = from === 'primary' ? 'secondary' : 'primary'
      const plan = planFailover(config, from, to)
      return this.finish({from, plan, to}, ExitCode.ok, () => `Failover ${labels[from]} → ${labels[to]}\n\n${renderPlan(plan)}`)
    }

    const {preparePlan} = await import('../failover/prepare.js')
    const r = planResult(await preparePlan({config, signal: this.abort.signal}))
    const guestLines = r.guests ? (await import('../guests/report.js')).placementLines(r.guests, labels[r.to]) : []
    // Under --quiet the plan is not printed: the line says only what was not checked.
    const quiet = r.verified ? undefined : `the plan is not checked against the nodes: ${r.unchecked.map((u) => `${u.node}: ${u.reason}`).join('; ')}`
    return this.finish(r, r.verified ? ExitCode.ok : ExitCode.problems, (p) => renderPlanResult(p, labels, renderPlan(p.plan), guestLines), quiet)
  }

  /**
   * At a terminal, before the question: what will happen (the plan, and with guests what it would
   * do with each on the node taking over, as --plan says it), who is active, which epoch and backup.
   */
  private async showBeforeQuestion(config: Config, prepared: Prepared & {nodes: FailoverNodes}, labels: Record<NodeName, string>, plan: string): Promise<void> {
    const roles = prepared.roles
    this.reporter.say(`${plan}\n`)
    if (config.guests.length > 0 && roles) {
      const {readGuests} = await import('../failover/status.js')
      const {placementLines} = await import('../guests/report.js')
      this.reporter.say(`${placementLines(await readGuests(config, prepared.nodes, roles.reachable, prepared.from, this.abort.signal), labels[prepared.to]).join('\n')}\n`)
    }

    this.reporter.say(`Active: ${labels[prepared.from]}${prepared.activeUnreachable ? ' — DOES NOT ANSWER ssh' : ''}; taking over: ${labels[prepared.to]}`)
    this.reporter.say(`Epoch: ${roles?.epoch ?? '?'} (${roles?.source === 'storage' ? 'from the shared storage' : roles?.source === 'node' ? 'as a node last noted it' : 'no takeover yet'}); after the takeover: ${(roles?.epoch ?? 0) + 1}`)
    this.reporter.say(prepared.activeUnreachable ? 'Backup: the newest verified backup on the storage (the active node cannot make one)\n' : `Backup: a final backup made now on ${labels[prepared.from]}\n`)
  }

  /**
   * Under Pacemaker (cluster.manager: pacemaker): the guided switchover through the cluster
   * (src/cluster/switchover.ts), never the manual steps; --resume, --abort and --fenced belong to
   * the manual failover and are refused.
   */
  private async switchover(config: Config, path: string, flags: {abort: boolean; fenced?: string; from?: string; plan: boolean; resume: boolean; yes: boolean}): Promise<unknown> {
    const {refuseUnderPacemaker} = await import('../cluster/refuse.js')
    if (flags.resume) refuseUnderPacemaker(config, path, 'ha failover --resume')
    if (flags.abort) refuseUnderPacemaker(config, path, 'ha failover --abort')
    if (flags.fenced !== undefined) throw new ConfigError(`--fenced is refused: ${path} has cluster.manager: pacemaker, and Pacemaker fences a node it lost itself (stonith)`, {actions: ['crm_mon --fence-history=2 -1 shows its fencing; ha failover moves the service of a live cluster']})
    if (flags.from && !flags.plan) throw new ConfigError('--from only goes with --plan', {actions: ['ha failover --plan --from primary']})
    const {planSwitchover} = await import('../cluster/switchover-plan.js')
    const {prepareSwitchover, runSwitchover} = await import('../cluster/switchover.js')
    const {renderPlan} = await import('../failover/plan.js')
    const title = (from: NodeName, to: NodeName) => `Switchover through Pacemaker: ${config.cluster.group} from ${config.nodes[from].hostname} (${from}) to ${config.nodes[to].hostname} (${to})`
    if (flags.plan && flags.from) {
      const from = flags.from as NodeName
      const to = from === 'primary' ? 'secondary' : 'primary'
      const plan = planSwitchover(config, from, to)
      return this.finish({from, kind: 'switchover', plan, to}, ExitCode.ok, () => `${title(from, to)}\n\n${renderPlan(plan)}`)
    }

    const prepared = await prepareSwitchover(config, this.abort.signal).catch((error: Error) => {
      if (!flags.plan || !(error instanceof HaError)) throw error
      return error
    })
    if (prepared instanceof HaError) {
      // --plan without a view of the cluster: the plan from the config, the reason said (exit 3, as the manual plan).
      const plan = planSwitchover(config, 'primary', 'secondary')
      const note = `not checked against the cluster: ${prepared.message.split('\n')[0]}; the direction is assumed (ha failover --plan --from NODE names one)`
      return this.finish({direction_note: note, from: 'primary', kind: 'switchover', plan, to: 'secondary', verified: false}, ExitCode.problems, () => `${title('primary', 'secondary')}\n${note}\n\n${renderPlan(plan)}`, note)
    }

    const plan = planSwitchover(config, prepared.from, prepared.to, prepared.via)
    if (flags.plan) {
      await prepared.nodes.closeAll()
      return this.finish({from: prepared.from, kind: 'switchover', plan, to: prepared.to, verified: true}, ExitCode.ok, () => `${title(prepared.from, prepared.to)}\n\n${renderPlan(plan)}`)
    }

    try {
      const {canPrompt, confirmTyped} = await import('../cli/prompt.js')
      if (!flags.yes && canPrompt() && this.reporter.mode !== 'json') this.reporter.say(`${renderPlan(plan)}\n`)
      await confirmTyped({action: `switch ${config.cluster.group} over to ${config.nodes[prepared.to].hostname}`, expected: config.nodes[prepared.to].hostname, yes: flags.yes})
    } catch (error) {
      await prepared.nodes.closeAll()
      throw error
    }

    this.reporter.say(title(prepared.from, prepared.to))
    this.switching = true
    const result = await runSwitchover(prepared, {
      onEvent: (e) => {
        const took = e.duration_ms === undefined ? '' : ` (${(e.duration_ms / 1000).toFixed(1)}s)`
        this.reporter.event({type: e.type, step: e.step, event: e.event, kind: 'switchover', title: e.title, ...(e.duration_ms === undefined ? {} : {duration_ms: e.duration_ms}), ...(e.error ? {error: e.error} : {})}, `${{done: '✓', failed: '✗', started: '…'}[e.event]} ${e.step}${e.event === 'started' ? ` ${e.title}` : ''}${took}${e.error ? `: ${e.error}` : ''}`)
      },
      // The group's placement as it changes is part of the run's record, as the steps are.
      onProgress: (m) => this.reporter.say(`  ${m}`),
      onWarning: (m) => this.reporter.warn(m),
      signal: this.abort.signal,
      claim: async (from, to) => {
        const [{RunClaims, refuseIfClaimed}, {newRunId}] = await Promise.all([import('../failover/run-claims.js'), import('../failover/journal.js')])
        await refuseIfClaimed(prepared.nodes)
        const claims = new RunClaims(prepared.nodes, {from, kind: 'switchover', run_id: newRunId(), to})
        await claims.take()
        return claims
      },
    })
    return this.finish(result, ExitCode.ok, (r) =>
      [
        `Switchover done: Pacemaker runs ${r.group} on ${config.nodes[r.to].hostname} (${r.to}); the move constraint is removed.`,
        ...(r.verify.service === null ? [] : [`Service: ${r.verify.service.split('\n')[0].slice(0, 100)}`]),
        `ha's view: ${r.verify.ha_view}`,
        `${(r.wall_ms / 1000).toFixed(1)}s (waiting on the cluster ${(r.waiting_ms / 1000).toFixed(1)}s): ${r.steps.map((x) => `${x.id} ${(x.duration_ms / 1000).toFixed(1)}s`).join(', ')}`,
      ].join('\n'),
    )
  }

  /** --forget RUN: asked at a terminal (the run id typed), --yes from a script; without either, exit 4. */
  private async forget(config: Config, runId: string, yes: boolean): Promise<unknown> {
    const {confirmTyped} = await import('../cli/prompt.js')
    await confirmTyped({action: `forget run ${runId}: its claim on the pair is removed, and it can never be resumed`, expected: runId, flag: '--yes', what: 'the run id', yes})
    const {forgetRun} = await import('../failover/forget.js')
    const result = await forgetRun(config, runId, this.abort.signal)
    return this.finish(result, ExitCode.ok, (r) =>
      [
        `forgot run ${r.run_id}`,
        r.claims_removed.length > 0 ? `  claim removed on: ${r.claims_removed.join(', ')} (written down in /var/lib/ha/forgotten-claims.jsonl there)` : '  no claim on the nodes that answered',
        ...(r.journal ? [`  journal ended: ${r.journal}`] : []),
        ...(r.unreachable.length > 0 ? [`  not asked (no answer): ${r.unreachable.join(', ')}; a claim there stays until it is forgotten again`] : []),
      ].join('\n'),
    )
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Failover)
    const {config, path} = await this.loadConfig(flags)
    if (config.cluster.manager === 'pacemaker' && !flags.forget) return this.switchover(config, path, flags)
    // Every direction stops, starts and checks the product: without these there is no plan to print.
    // And the storage driver's own keys: mount without storage.device would plan `mount -t ext4 ""`.
    const {storageDriver} = await import('../drivers/storage/index.js')
    requireNeeds(config, path, 'ha failover', storageDriver(config).failoverNeeds())

    if (flags.forget) return this.forget(config, flags.forget, flags.yes)
    if (flags.from && !flags.plan) throw new ConfigError('--from only goes with --plan', {actions: ['ha failover --plan --from primary']})
    if (flags.plan) return this.printPlan(config, flags.from as NodeName | undefined)
    const {nodeLabels, renderPlan} = await import('../failover/plan.js')
    const labels = nodeLabels(config)
    const fencedNode = flags.fenced === undefined ? undefined : nodeByName(config, flags.fenced)
    const {prepareFailover} = await import('../failover/prepare.js')
    const {operator} = await import('../failover/journal-open.js')
    const {runFailover} = await import('../failover/runner.js')
    const prepared = await prepareFailover({config, fenced: fencedNode, resume: flags.resume || flags.abort, signal: this.abort.signal})
    const direction = `${labels[prepared.from]} → ${labels[prepared.to]}`

    const {canPrompt, confirmTyped} = await import('../cli/prompt.js')
    const interactive = canPrompt() && this.reporter.mode !== 'json'
    let fenced: undefined | {by: string; how: 'flag' | 'typed'; node: string} = fencedNode ? {by: operator(), how: 'flag', node: fencedNode} : undefined
    try {
      if (!flags.yes && !flags.resume && !flags.abort) {
        if (interactive) await this.showBeforeQuestion(config, prepared, labels, renderPlan(prepared.plan))
        await confirmTyped({action: `fail over from ${labels[prepared.from]} to ${labels[prepared.to]}`, expected: config.nodes[prepared.to].hostname, yes: false})
      }

      if (prepared.activeUnreachable && !fenced && interactive && !flags.abort) {
        this.reporter.warn(`${labels[prepared.from]} does not answer ssh. ha cannot stop it: make sure it is powered off or cut off from the network and the storage.`)
        await confirmTyped({action: `confirm that ${labels[prepared.from]} is fenced`, expected: config.nodes[prepared.from].hostname, flag: `--fenced ${prepared.from}`, yes: false})
        fenced = {by: operator(), how: 'typed', node: prepared.from}
        prepared.nodes.confirmFenced(prepared.from)
      }
    } catch (error) {
      await prepared.nodes.closeAll()
      throw error
    }

    if (prepared.runsOnRebootedNode) {
      this.reporter.warn(`this machine is ${labels[prepared.to]}, which the failover reboots: this run will be cut off at the reboot step; once the node is back, finish it there with: ha failover --resume`)
    }

    this.reporter.say(`Failover ${direction}${flags.resume ? ' (resuming)' : flags.abort ? ' (aborting: putting the active node back)' : ''}`)
    this.running = true
    const result = await runFailover(prepared, {
      abort: flags.abort,
      config,
      fenced,
      onEvent: (e) => {
        const took = e.duration_ms === undefined ? '' : ` (${(e.duration_ms / 1000).toFixed(1)}s)`
        const mark = {done: '✓', failed: '✗', skipped: '–', started: '…', stopped: '■'}[e.event]
        this.reporter.event(e as unknown as Record<string, unknown>, `${mark} ${e.step}${e.event === 'skipped' ? ' (already so)' : ''}${e.event === 'started' ? ` ${e.title}` : ''}${took}${e.error ? `: ${e.error}` : ''}`)
      },
      onProgress: (m) => this.reporter.info(`  ${m}`),
      onWarning: (m) => this.reporter.warn(m),
      signal: this.abort.signal,
    })
    // The fenced node could not be edited: its fstab still mounts the storage when it boots.
    if (!result.aborted && (fenced ?? prepared.resume?.fencing())) {
      this.reporter.warn(`before you power ${labels[result.from]} on again, cut it off from the shared storage (unmap it, or boot it single-user and take the data directory out of its /etc/fstab): its boot configuration still mounts it, and two machines mounting it corrupt it. Then: ha rejoin ${result.from}`)
    }

    return this.finish(result, ExitCode.ok, (r) =>
      r.aborted ? `Failover aborted: ${labels[r.from]} is active again, as before.\nJournal: ${r.journal}` : [
        `Failover done: ${labels[r.to]} is active (epoch ${r.epoch}).`,
        `${r.steps.filter((s) => s.status === 'done').length} steps done, ${r.steps.filter((s) => s.status === 'skipped').length} already so; ${(r.wall_ms / 1000).toFixed(1)}s (ha ${(r.ha_ms / 1000).toFixed(1)}s, waiting ${(r.waiting_ms / 1000).toFixed(1)}s).`,
        `Journal: ${r.journal}`,
      ].join('\n'),
    )
  }
}

/** ha failover --plan's result: the plan, and (when not verified) each node ha could not check, by name and address. */
interface PlanResult {
  from: NodeName
  to: NodeName
  /** null when the nodes that answered cannot confirm it (a node silent, the other not holding the storage). */
  epoch: null | number
  direction_confirmed: boolean
  /** When not confirmed: why, and what the direction was taken from instead. */
  direction_note: null | string
  /** Both nodes answered and the roles were read from them. */
  verified: boolean
  unchecked: UncheckedNode[]
  plan: PlannedStep[]
  /** Only with guests: each guest as ha status shows it, with what this failover would do with it on the node taking over. */
  guests?: GuestRow[]
}

function planResult(p: PlanPrepared): PlanResult {
  const assumed = p.roles.source === 'node' ? `${p.from} active, as a node last noted it` : `${p.from} active, the config's primary`
  return {
    direction_confirmed: p.unconfirmed === undefined,
    direction_note: p.unconfirmed === undefined ? null : `${p.unconfirmed}; assumed: ${assumed}`,
    epoch: p.unconfirmed === undefined ? p.roles.epoch : null,
    from: p.from,
    plan: p.plan,
    to: p.to,
    unchecked: p.unchecked,
    verified: p.unchecked.length === 0,
    ...(p.guests ? {guests: p.guests} : {}),
  }
}

function renderPlanResult(r: PlanResult, labels: Record<NodeName, string>, plan: string, guestLines: string[]): string {
  const out = [`Failover ${labels[r.from]} → ${labels[r.to]} (epoch ${r.epoch ?? 'unknown'})`, '']
  if (!r.verified) {
    for (const u of r.unchecked) out.push(`${u.node} (${u.hostname}, ${u.address}): not checked: ${u.reason}`)
    out.push(
      ...(r.direction_confirmed
        ? [`The roles are from ${r.from} alone (it holds the storage); ha failover itself will not start until ${r.to} answers.`]
        : ['The plan below is from the config only: it was not checked against the nodes.', `Direction not confirmed: ${r.direction_note}. The other direction: ha failover --plan --from ${r.to}`]),
      '',
    )
  }

  out.push(plan)
  if (guestLines.length > 0) out.push('', ...guestLines)
  return out.join('\n')
}

function nodeByName(config: {nodes: Record<'primary' | 'secondary', {hostname: string}>}, name: string): 'primary' | 'secondary' {
  if (name === 'primary' || name === 'secondary') return name
  const match = (['primary', 'secondary'] as const).filter((n) => config.nodes[n].hostname === name)
  if (match.length === 1) return match[0]
  throw new ConfigError(`--fenced ${name}: not a node (primary, secondary) nor a node's hostname in the config`, {actions: ['pass --fenced primary or --fenced secondary']})
}

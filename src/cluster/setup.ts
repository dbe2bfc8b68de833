import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {usabilityProblems} from '../check/config-usable.js'
import {exampleConfigPath, fieldLine, type LoadedConfig} from '../config/load.js'
import {ConfigError, HaError, throwIfAborted} from '../core/errors.js'
import {describeArgv, type Host, stderrExcerpt} from '../hosts/host.js'
import {avoidXml, cibXml, type ClusterPlan, clusterPlan, groupXml, primitiveXml} from './cib.js'
import {pcsCommands} from './pcs.js'
import {filesystemResource, storageStopProblem} from '../drivers/storage/filesystem-stop.js'

/**
 * `ha cluster setup`: the Pacemaker configuration ha.yaml asks for, printed as CIB XML and as pcs
 * commands; with --apply, put into this node's CIB.
 *
 * How --apply stays safe: it reads the live CIB (cibadmin --query), makes every change in a
 * copy of it on this machine (the Pacemaker tools themselves, pointed at the copy with CIB_file),
 * has crm_verify judge the copy whole, and only then sends the difference (crm_diff) to the
 * cluster as one patch (cibadmin --patch), which Pacemaker applies whole or not at all, on top
 * of the CIB as it is then (a change made meanwhile stays); one made from a CIB the cluster has
 * moved past is refused, and ha reads again (three attempts). A copy crm_verify rejects is
 * dropped: nothing reaches the cluster. A copy with nothing changed (its epoch did not move) sends nothing.
 * This rather than a shadow CIB (crm_shadow): a shadow lives in the cluster's own folder and is
 * committed as a whole-CIB replace, which can undo a change made meanwhile.
 */
export interface ClusterSetupResult {
  /** Only with --apply. */
  applied: AppliedSetup | null
  /** The configuration's parts (properties, resources, constraints) as CIB XML. */
  cib: string
  /** ha.yaml's path on the nodes, the controller resource's config parameter. */
  node_config: string
  pcs: string[]
}

export interface AppliedSetup {
  /** What the patch changed: "created ha-service", "replaced fence-a", "set stonith-enabled=true"; empty when nothing. */
  changes: string[]
  /** The CIB's epoch before, and after (the same when nothing changed). */
  epoch_after: number
  epoch_before: number
  /** crm_verify -L on the live CIB at the end: whether it accepts it, and what it said (warnings). */
  verified_live: boolean
  verify_warnings: string
}

export interface SetupOptions {
  apply: boolean
  /** Runs cibadmin, crm_attribute, crm_diff and crm_verify: this machine. */
  host: Host
  nodeConfig?: string
  signal?: AbortSignal
}

export async function clusterSetup(loaded: LoadedConfig, options: SetupOptions, onWarning: (message: string) => void): Promise<ClusterSetupResult> {
  const {config, path, text} = loaded
  const nodeConfig = options.nodeConfig ?? resolve(path)
  const plan = clusterPlan(config, {nodeConfig})
  const problems = await usabilityProblems(config, onWarning)
  if (problems.length > 0) {
    const lines = problems.map((p) => `${path}:${fieldLine(text, p.field)}: ${p.field.join('.')}: ${p.message}`)
    throw new ConfigError(lines.length === 1 ? lines[0] : `${lines.length} problems in ${path}:\n  ${lines.join('\n  ')}`, {
      actions: [`fix ${path} (ha config check says the same); ${exampleConfigPath} documents every key`],
      details: {problems: lines},
    })
  }

  // Pacemaker's Filesystem agent would take another mount here for the storage's and unmount it
  // (src/drivers/storage/filesystem-stop.ts): said before anything is applied; ha check asks both nodes.
  const resource = options.apply ? filesystemResource(config) : undefined
  const stop = resource ? await storageStopProblem(resource, options.host, 'this node').catch(() => undefined) : undefined
  if (stop) onWarning(`${stop.problem}; ${stop.actions.join('; ')}`)
  const applied = options.apply ? await applyPlan(plan, options.host, options.signal) : null
  return {applied, cib: cibXml(plan), node_config: nodeConfig, pcs: pcsCommands(plan)}
}

/** The CIB's epoch, from its root element (bumped by every change to the configuration). */
export function epochOf(xml: string): number {
  const root = /<cib\b[^>]*>/.exec(xml)?.[0] ?? ''
  return Number(/\sepoch="(\d+)"/.exec(root)?.[1] ?? Number.NaN)
}

/** Pacemaker's exit status for "no such object" (cibadmin --replace of an id the CIB lacks). */
const noSuchObject = 105

/** cibadmin --patch's exit status when the cluster's CIB has moved past the one the patch was made from (pcmk_err_old_data). */
const cibMovedOn = 103
/** Attempts when the CIB moves on meanwhile (a node joining, the DC writing its properties): each starts again from a fresh read. */
const attempts = 3

/** The patch was made from a CIB the cluster has since changed: nothing was applied, and a fresh read may do. */
class CibMovedOnError extends HaError {}

async function applyPlan(plan: ClusterPlan, host: Host, signal?: AbortSignal): Promise<AppliedSetup> {
  const run = (argv: string[]) => host.run(argv, {signal, timeoutMs: 60_000})
  for (let attempt = 1; ; attempt++) {
    try {
      return await applyOnce(plan, run, signal)
    } catch (error) {
      if (!(error instanceof CibMovedOnError)) throw error
      if (attempt >= attempts) {
        throw new HaError(`${error.message}, ${attempts} times in a row; nothing was changed`, {actions: ['run ha cluster setup --apply again once the cluster is settled (crm_mon shows no transition in progress)']})
      }

      await sleep(2000)
      throwIfAborted(signal)
    }
  }
}

async function applyOnce(plan: ClusterPlan, run: Run, signal?: AbortSignal): Promise<AppliedSetup> {
  const query = await run(['cibadmin', '--query'])
  if (query.code !== 0) {
    throw new HaError(`cannot read this node's CIB (\`cibadmin --query\` exit ${query.code}${excerpt(query.stderr)}): is this a cluster node with pacemaker running, and ha run as root?`, {
      actions: ['run ha cluster setup --apply as root on a node where crm_mon shows the cluster', 'or run ha cluster setup without --apply and give its pcs commands or XML to the cluster yourself'],
    })
  }

  const dir = await mkdtemp(join(tmpdir(), 'ha-cluster-setup-'))
  try {
    const live = join(dir, 'live.xml')
    const copy = join(dir, 'new.xml')
    const liveText = query.stdout.toString()
    await writeFile(live, liveText, {mode: 0o600})
    await writeFile(copy, liveText, {mode: 0o600})
    const changes = await editCopy(plan, copy, run, signal)
    const verify = await run(['crm_verify', '--xml-file', copy, '-V'])
    if (verify.code !== 0) {
      throw new ConfigError(`crm_verify rejects this node's CIB with ha's resources in it (exit ${verify.code}): ${verifyErrors(verify)}; nothing was changed`, {
        actions: ['fix what crm_verify names (in ha.yaml, or in the CIB when it is something of its own), then run ha cluster setup --apply again'],
      })
    }

    const before = epochOf(liveText)
    const after = epochOf(await readFile(copy, 'utf8'))
    const changed = changes.length > 0 && after !== before
    if (changed) {
      throwIfAborted(signal)
      await patchLive(live, copy, join(dir, 'patch.xml'), run)
    }

    const check = await run(['crm_verify', '-L'])
    const now = changed ? await run(['cibadmin', '--query']) : query
    const warnings = check.code === 0 ? stderrExcerpt(check.stderr) || stderrExcerpt(check.stdout) : `exit ${check.code}: ${verifyErrors(check)}`
    // The cluster bumps the epoch once more as it takes the patch in: the live one is the one to quote.
    const epochAfter = now.code === 0 ? epochOf(now.stdout.toString()) : after
    return {changes: changed ? changes : [], epoch_after: epochAfter, epoch_before: before, verified_live: check.code === 0, verify_warnings: warnings}
  } finally {
    await rm(dir, {force: true, recursive: true})
  }
}

type Run = (argv: string[]) => ReturnType<Host['run']>

/** Every part of the plan put into the copy (CIB_file), each noted when it changed the copy's epoch. */
async function editCopy(plan: ClusterPlan, copy: string, run: Run, signal?: AbortSignal): Promise<string[]> {
  const onCopy = (argv: string[]) => ['env', '-u', 'CIB_shadow', `CIB_file=${copy}`, ...argv]
  const changes: string[] = []
  let epoch = epochOf(await readFile(copy, 'utf8'))
  const noteIfChanged = async (what: string) => {
    const now = epochOf(await readFile(copy, 'utf8'))
    if (now !== epoch) changes.push(what)
    epoch = now
  }

  const put = async (scope: 'constraints' | 'resources', id: string, xml: string) => {
    throwIfAborted(signal)
    const replace = ['cibadmin', '--replace', '--scope', scope, '--xml-text', xml]
    let r = await run(onCopy(replace))
    let verb = 'replaced'
    if (r.code === noSuchObject) {
      verb = 'created'
      r = await run(onCopy(['cibadmin', '--create', '--scope', scope, '--xml-text', xml]))
    }

    if (r.code !== 0) {
      throw new ConfigError(`cibadmin refuses ${id} in a copy of this node's CIB (exit ${r.code}${excerpt(r.stderr)}); nothing was changed`, {
        actions: [`look for an element with the id ${id} or one of its parts elsewhere in the CIB (cibadmin --query | grep ${id}), or change the id in ha.yaml`],
      })
    }

    await noteIfChanged(`${verb} ${id}`)
  }

  for (const device of plan.fencing) await put('resources', device.id, primitiveXml(device))
  await put('resources', plan.group.id, groupXml(plan))
  for (const avoid of plan.avoids) await put('constraints', avoid.id, avoidXml(avoid))
  for (const [name, value] of plan.properties) {
    throwIfAborted(signal)
    const argv = ['crm_attribute', '--type', 'crm_config', '--name', name, '--update', value]
    const r = await run(onCopy(argv))
    if (r.code !== 0) throw new ConfigError(`\`${describeArgv(argv)}\` fails on a copy of this node's CIB (exit ${r.code}${excerpt(r.stderr)}); nothing was changed`)
    await noteIfChanged(`set ${name}=${value}`)
  }

  return changes
}

/** The copy's difference from the live CIB, sent as one patch: applied whole, or refused when the CIB moved on. */
async function patchLive(live: string, copy: string, patchFile: string, run: Run): Promise<void> {
  const diff = await run(['crm_diff', '--original', live, '--new', copy])
  if (diff.code !== 1) throw new HaError(`\`crm_diff\` found ${diff.code === 0 ? 'no difference after a change' : `nothing it could compare (exit ${diff.code}${excerpt(diff.stderr)})`}; nothing was changed`)
  await writeFile(patchFile, diff.stdout, {mode: 0o600})
  const patch = await run(['cibadmin', '--patch', '--xml-file', patchFile])
  if (patch.code === cibMovedOn) throw new CibMovedOnError(`the cluster's CIB changed between ha reading it and sending the patch (\`cibadmin --patch\` exit ${patch.code}${excerpt(patch.stderr)})`)
  if (patch.code !== 0) {
    throw new HaError(`the cluster refused the change (\`cibadmin --patch\` exit ${patch.code}${excerpt(patch.stderr)}); nothing was changed: it applies a patch whole or not at all`, {
      actions: ['run ha cluster setup --apply again (the CIB may have changed since it was read)'],
    })
  }
}

/** crm_verify -V's findings, one line each, without the function names it prefixes them with. */
function verifyErrors(r: {stderr: Buffer; stdout: Buffer}): string {
  const lines = `${r.stdout.toString()}\n${r.stderr.toString()}`
    .split('\n')
    .map((l) => l.replace(/^\([\w-]+\)\s+/, '').trim())
    .filter((l) => l && !/^-V may provide/.test(l) && !/^crm_verify: Errors found/.test(l))
  const unique = [...new Set(lines)]
  return unique.length > 0 ? unique.join('; ') : 'config not valid'
}

const excerpt = (stderr: Buffer) => {
  const text = stderrExcerpt(stderr)
  return text ? `: ${text}` : ''
}

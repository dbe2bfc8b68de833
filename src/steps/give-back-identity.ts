import {keptIdentityPath} from '../restore/standby-identity.js'
import {HaError} from '../core/errors.js'
import type {Host} from '../hosts/host.js'
import {appendKnownHost} from '../hosts/known-hosts-append.js'
import {fingerprint} from '../hosts/ssh-key-blob.js'
import {hostKeysArgv, parseHostKeys} from './final-backup.js'
import {bootId} from './observe.js'
import {waitForNewBoot} from './reboot.js'
import type {Action, Step, StepContext} from './step.js'

/**
 * ha rejoin (here `from` is the node rejoining): the standby identity its takeover kept on its
 * own disk (src/restore/standby-identity.ts) goes back in place, by ha on the node itself; its
 * own host keys are recorded in known_hosts here, as the takeover records the keys it installs;
 * the node reboots into its identity (hostname, sshd's keys, network: what a boot reads, as the
 * takeover's reboot does); then the proof: the hostname is the config's for that node and the
 * key it presents is one of the kept ones (any other is refused). The kept copy is removed only
 * after that proof.
 */
type Ctx = Pick<StepContext, 'config' | 'from' | 'to'>

const giveBack = (ctx: Ctx): Action => ({argv: ['ha', 'rejoin', ctx.from, '--kept-identity', 'give-back', '--json'], on: ctx.from})
const forget = (ctx: Ctx): Action => ({argv: ['ha', 'rejoin', ctx.from, '--kept-identity', 'forget', '--json'], on: ctx.from})
const reboot = (ctx: Ctx): Action => ({argv: ctx.config.nodes[ctx.from].reboot_command, on: ctx.from})
const record = (ctx: Ctx): Action | undefined => {
  const ssh = ctx.config.nodes[ctx.from].ssh
  return ssh ? {edit: ssh.known_hosts, on: 'here', what: `record ${ctx.config.nodes[ctx.from].hostname}'s own host keys for ${ssh.host}`} : undefined
}

async function runningHostname(host: Host): Promise<string> {
  return (await host.runChecked(['hostname'])).stdout.toString().trim()
}

function envelopeOf(stdout: string): {error?: {actions?: string[]; message?: string}; result?: Record<string, unknown>} {
  try {
    return JSON.parse(stdout)
  } catch {
    return {error: {message: stdout.trim().slice(-500)}}
  }
}

export const giveBackIdentity: Step = {
  actions: (ctx) => [giveBack(ctx), ...[record(ctx)].filter((a) => a !== undefined), ...(ctx.config.failover.reboot ? [reboot(ctx)] : []), forget(ctx)],
  id: 'give-back-identity',
  on: (ctx) => ctx.from,
  async post(ctx) {
    if (ctx.data('give-back-identity').proven === true) return true
    const host = await ctx.host(ctx.from)
    // Nothing kept and the node is itself: nothing to give back (a node that never took over).
    return !(await host.stat(keptIdentityPath)) && (await runningHostname(host)) === ctx.config.nodes[ctx.from].hostname
  },
  async run(ctx) {
    const own = ctx.config.nodes[ctx.from].hostname
    let host = await ctx.host(ctx.from)
    if (!(await host.stat(keptIdentityPath))) {
      throw new HaError(`${ctx.from} is named ${await runningHostname(host)}, not ${own}, and no standby identity is kept on it (${keptIdentityPath}): ha cannot give it back`, {
        actions: [`give ${ctx.from} its own hostname, /etc/hosts, ssh host keys and network configuration by hand, then ha rejoin ${ctx.from}`],
      })
    }

    const r = await ctx.act(giveBack(ctx), {allow: [0, 1, 2]})
    const envelope = envelopeOf(r.stdout.toString())
    if (r.code !== 0 || !envelope.result) {
      throw new HaError(`${ctx.from}: ${envelope.error?.message ?? r.stderr.toString().trim()}`, {actions: envelope.error?.actions ?? []})
    }

    const given = envelope.result as {changed: string[]; host_keys: string[]; hostname: string; service_ips_removed: string[]}
    if (given.hostname !== own) {
      throw new HaError(`the identity kept on ${ctx.from} names it ${given.hostname}, the config says ${own}`, {actions: [`check nodes.${ctx.from}.hostname in the config, and /etc/hostname on ${ctx.from}`]})
    }

    if (given.host_keys.length === 0) throw new HaError(`the identity kept on ${ctx.from} holds no ssh host key (/etc/ssh/ssh_host_*_key.pub)`)
    const kept = given.host_keys.map((k) => fingerprint(Buffer.from(k.split(' ')[1] ?? '', 'base64')))
    await ctx.remember({changed: given.changed, kept_keys: kept, service_ips_removed: given.service_ips_removed})
    if (given.changed.length > 0) ctx.progress(`${ctx.from}: gave back ${given.changed.join(', ')}`)
    for (const ip of given.service_ips_removed) ctx.progress(`${ctx.from}: ${ip} left out of the kept network configuration (a standby holds no service IP)`)

    // Recorded before the reboot, so the connection afterwards finds the node's own key known.
    const edit = record(ctx)
    const ssh = ctx.config.nodes[ctx.from].ssh
    if (edit && ssh) {
      const {entriesForName, hostKeyName, readKnownHosts} = await import('../hosts/known-hosts.js')
      const listed = entriesForName(await readKnownHosts(ssh.known_hosts), hostKeyName(ssh.host, ssh.port)).filter((e) => e.marker === undefined)
      const missing = given.host_keys.map((k) => Buffer.from(k.split(' ')[1] ?? '', 'base64')).filter((b) => !listed.some((e) => e.key.blob.equals(b)))
      if (missing.length > 0) {
        await ctx.act(edit, {inProcess: async () => {
          for (const blob of missing) await appendKnownHost(ssh.known_hosts, ssh.host, ssh.port, blob)
        }})
      }

      ctx.progress(missing.length > 0 ? `${ssh.known_hosts}: added ${missing.map((b) => fingerprint(b)).join(', ')} for ${ssh.host}` : `${ssh.known_hosts}: ${own}'s own keys were already listed for ${ssh.host}`)
      const others = listed.filter((e) => !kept.includes(fingerprint(e.key.blob)))
      if (others.length > 0) ctx.progress(`${ssh.known_hosts}: also lists ${others.map((e) => `${fingerprint(e.key.blob)} (line ${e.line})`).join(', ')} for ${ssh.host}; ha refuses them from ${ctx.from} in this run (ssh-keygen -R ${ssh.host} -f ${ssh.known_hosts} removes them, then add the kept keys back)`)
      await ctx.remember({known_hosts_added: missing.map((b) => fingerprint(b))})
    }

    const presented = () => host.hostKeyFingerprint
    const needsBoot = (await runningHostname(host)) !== own || (presented() !== undefined && !kept.includes(presented()!)) || given.changed.length > 0
    if (needsBoot) {
      if (!ctx.config.failover.reboot) {
        throw new HaError(`${ctx.from} has its own identity files back, but runs with the other's until it reboots (failover.reboot is off)`, {
          actions: [`reboot ${ctx.from}, then ha rejoin ${ctx.from} again`],
        })
      }

      host = await rebootInto(ctx, host)
    }

    // The proof, on a fresh connection after the reboot.
    const name = await runningHostname(host)
    if (name !== own) throw new HaError(`${ctx.from} is named ${name} after it got its identity back, not ${own}`, {actions: [`look at /etc/hostname on ${ctx.from}`]})
    if (presented() !== undefined && !kept.includes(presented()!)) {
      throw new HaError(`${ctx.from} (${host.address}) presents host key ${presented()}, not one of its kept keys (${kept.join(', ')}); refused`, {
        actions: [`find out why ${ctx.from} presents another key (is it the machine you think?), then ha rejoin ${ctx.from}`],
      })
    }

    const onDisk = parseHostKeys((await host.runChecked(hostKeysArgv)).stdout.toString())
    if (JSON.stringify(onDisk) !== JSON.stringify(given.host_keys)) {
      throw new HaError(`${ctx.from}: its ssh host keys on disk are not the kept ones after the give-back`, {actions: [`compare /etc/ssh/ssh_host_*_key.pub on ${ctx.from} with ${keptIdentityPath}`]})
    }

    const f = await ctx.act(forget(ctx), {allow: [0, 1, 2]})
    if (f.code !== 0) throw new HaError(`${ctx.from}: ${envelopeOf(f.stdout.toString()).error?.message ?? f.stderr.toString().trim()}`)
    await ctx.remember({hostname: name, host_key: presented() ?? 'local', proven: true})
  },
  title: 'Give the node back its own standby identity (hostname, hosts, ssh host keys, network) kept at its takeover; reboot into it; prove hostname and host key',
}

/** Reboots the rejoining node and waits for a new boot id (see waitForNewBoot): a fresh connection. */
async function rebootInto(ctx: StepContext, host: Host): Promise<Host> {
  const before = await bootId(host)
  await ctx.remember({boot_before: before})
  await ctx.act(reboot(ctx), {allow: [0, 255]}).catch((error: Error) => ctx.progress(`${ctx.from}: ${error.message.split('\n')[0]}`))
  // A rejoin run again refuses a node that does not answer: it does not wait for it.
  await waitForNewBoot(ctx, ctx.from, before, {command: `ha rejoin ${ctx.from}`, waitsForIt: false})
  return ctx.host(ctx.from)
}

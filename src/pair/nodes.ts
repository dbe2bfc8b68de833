import type {Config, NodeName} from '../config/schema.js'
import {HaError, InterruptedError} from '../core/errors.js'
import {connectHost} from '../hosts/connect.js'
import type {Host} from '../hosts/host.js'
import {SshConnectError} from '../hosts/ssh-host.js'

/** Kinds of connection failure that mean "the node does not answer", as opposed to "it answers wrongly". */
const silentKinds = new Set(['refused', 'timeout', 'unreachable', 'ssh_error'])

/**
 * The two nodes as the failover reaches them: one connection each, reopened after a reboot. Once
 * the restore gave the node taking over the active node's host keys, a connection to it must
 * present one of exactly those (known_hosts may still list its old key for the address: that
 * key is refused here).
 *
 * A node the admin confirmed fenced is asked until it is found silent once after that
 * confirmation; from then on, for the rest of the run, that finding is the answer and the node is
 * not waited on again (each attempt costs a connect timeout). A silence found before the
 * confirmation (the admin typed it after the plan was shown) is asked once more.
 */
export class FailoverNodes {
  private readonly hosts = new Map<NodeName, Host>()
  private readonly expected = new Map<NodeName, string[]>()
  private readonly fenced = new Set<NodeName>()
  private readonly silent = new Map<NodeName, SshConnectError>()

  constructor(
    private readonly config: Config,
    private readonly signal?: AbortSignal,
  ) {}

  expectHostKeys(node: NodeName, fingerprints: string[]): void {
    this.expected.set(node, fingerprints)
  }

  /** The admin confirmed the node fenced (--fenced, typed, or journalled by the run being resumed). */
  confirmFenced(node: NodeName): void {
    if (this.fenced.has(node)) return
    this.fenced.add(node)
    this.silent.delete(node)
  }

  /** The node was confirmed fenced and found silent since: the failure that showed it, else undefined. */
  foundSilent(node: NodeName): SshConnectError | undefined {
    return this.silent.get(node)
  }

  async get(node: NodeName): Promise<Host> {
    const open = this.hosts.get(node)
    if (open) return open
    const expected = this.expected.get(node)
    let host: Host
    try {
      host = await this.connect(node)
    } catch (error) {
      // known_hosts refused a key it does not list before ha could compare it: after the takeover
      // that is the same refusal as below, said the same way (node, key presented, keys expected).
      if (expected && error instanceof SshConnectError && (error.kind === 'host_key_changed' || error.kind === 'host_key_unknown')) {
        const ssh = this.config.nodes[node].ssh!
        throw hostKeyRefused(node, `${ssh.user}@${ssh.host}:${ssh.port}`, /(?:presented|host key) (SHA256:[\w+/=]+)/.exec(error.message)?.[1] ?? 'a key ha could not read', expected)
      }

      throw error
    }

    if (expected && host.hostKeyFingerprint !== undefined && !expected.includes(host.hostKeyFingerprint)) {
      await host.close().catch(() => {})
      throw hostKeyRefused(node, host.address, host.hostKeyFingerprint, expected)
    }

    this.hosts.set(node, host)
    return host
  }

  /**
   * A connection of the caller's own, not the run's (the caller closes it): ha check after the
   * takeover asks what the next admin will meet. A node confirmed fenced and found silent is not
   * asked again: its finding is thrown at once.
   */
  async fresh(node: NodeName): Promise<Host> {
    return this.connect(node)
  }

  private async connect(node: NodeName): Promise<Host> {
    const found = this.silent.get(node)
    if (found) throw found
    try {
      return await connectHost(node, this.config.nodes[node], {signal: this.signal})
    } catch (error) {
      if (this.fenced.has(node) && error instanceof SshConnectError && silentKinds.has(error.kind)) this.silent.set(node, error)
      throw error
    }
  }

  /** True when the node answers ssh; false when it is silent; a wrong host key or bad credentials still throw. */
  async reachable(node: NodeName): Promise<boolean> {
    try {
      await this.get(node)
      return true
    } catch (error) {
      if (error instanceof InterruptedError) throw error
      if (error instanceof SshConnectError && silentKinds.has(error.kind)) return false
      throw error
    }
  }

  /** Whether a connection to the node is open now (nothing is attempted). */
  connected(node: NodeName): boolean {
    return this.hosts.has(node)
  }

  async drop(node: NodeName): Promise<void> {
    const host = this.hosts.get(node)
    this.hosts.delete(node)
    await host?.close().catch(() => {})
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.hosts.keys()].map((n) => this.drop(n)))
  }
}

/** After the takeover the node must present the key restored from the backup; any other is refused (exit 1), nothing further done. */
function hostKeyRefused(node: NodeName, address: string, presented: string, expected: string[]): HaError {
  return new HaError(`${node} (${address}) presents host key ${presented}, but after the takeover it must present the key restored from the backup (${expected.join(', ')}); refused`, {
    actions: [`find out why ${node} presents another key (is it the machine you think? compare ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on its console), then ha failover --resume`],
    details: {expected, node, presented},
  })
}

import {z} from 'zod'

import {parseDuration} from './duration.js'

/**
 * The one configuration file, as a schema. Every key here is documented in
 * templates/ha.example.yaml; a test loads that file, so the two cannot drift apart.
 * Keys are snake_case; the same words are used for flags (kebab-case) and JSON fields.
 */

export const absolutePath = z
  .string()
  .min(1)
  .refine((p) => p.startsWith('/'), {message: 'must be an absolute path (start with /)'})

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const seconds = parseDuration(value)
  if (seconds === undefined) {
    ctx.addIssue({code: z.ZodIssueCode.custom, message: `"${value}" is not a duration (use e.g. 90s, 15m, 2h, 7d)`})
    return z.NEVER
  }

  return seconds
})

/** Files that identify one machine; cloning them onto the peer breaks licensing, DHCP and journald. */
export const neverBackedUp = ['/etc/hostid', '/etc/machine-id', '/var/lib/dbus/machine-id']

const backupPath = absolutePath.refine((p) => !neverBackedUp.includes(p), {
  message: `names a machine identity file that ha never copies (${neverBackedUp.join(', ')}); remove it`,
})

export const sshSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535).default(22),
    user: z.string().min(1).default('root'),
    identity_file: absolutePath.optional(),
    known_hosts: absolutePath.default('/root/.ssh/known_hosts'),
    host_key_policy: z.enum(['strict', 'accept-new']).default('strict'),
    connect_timeout: duration.default('10s'),
    command_timeout: duration.default('60s'),
    keepalive_interval: duration.default('5s'),
    // ssh2: ha's own SSH client (the npm package). openssh: the system ssh, one ControlMaster per
    // node, honouring ~/.ssh/config; the only one that accepts host certificates.
    client: z.enum(['ssh2', 'openssh']).default('ssh2'),
  })
  .strict()

/** A libvirt connection URI as virsh -c takes it: driver[+transport]://[host[:port]]/path. */
const libvirtUri = z.string().regex(/^[a-z][a-z0-9]*(\+[a-z0-9]+)?:\/\/[^\s'"]*\/[^\s'"]*$/, 'must be a libvirt URI as virsh -c takes it, e.g. qemu:///system or qemu+tcp://198.18.0.3/system')

/**
 * One node's libvirtd. uri: what virsh on the node itself connects to. migration_uri: how the
 * other node's libvirtd reaches this one as the target of a live migration (virsh migrate's
 * destination); without it, guests move to this node by restart only.
 */
export const libvirtSchema = z
  .object({
    uri: libvirtUri.default('qemu:///system'),
    migration_uri: libvirtUri.optional(),
  })
  .strict()

export const nodeSchema = z
  .object({
    hostname: z.string().min(1),
    ssh: sshSchema.optional(),
    root: absolutePath.default('/'),
    // An argv, run on the node itself (over ssh when it has an ssh block); it must return before
    // the node goes down, as /sbin/reboot does, so the session that asked gets its exit status.
    reboot_command: z.array(z.string().min(1)).min(1).default(['/sbin/reboot']),
    // Only with guests: how virsh reaches this node's libvirtd (docs/guests.md).
    libvirt: libvirtSchema.optional(),
  })
  .strict()

/**
 * A service IP as IPv4 CIDR: four octets of 0-255 and a prefix length of 1-32. A typo here
 * (999.18.1.10/99) would otherwise reach `ip addr add` only in the middle of a failover.
 */
export function cidrProblem(value: string): string | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value)
  if (!match) return 'must be an IPv4 address with prefix length, e.g. 198.18.1.10/24'
  const octets = match.slice(1, 5)
  const bad = octets.find((o) => Number(o) > 255 || (o.length > 1 && o.startsWith('0')))
  if (bad !== undefined) return `"${value}": ${bad} is not an octet (0-255, no leading zero); e.g. 198.18.1.10/24`
  const prefix = Number(match[5])
  if (prefix < 1 || prefix > 32 || (match[5].length > 1 && match[5].startsWith('0'))) {
    return `"${value}": /${match[5]} is not a prefix length (1-32); e.g. 198.18.1.10/24`
  }

  return undefined
}

export const serviceIpSchema = z
  .object({
    address: z.string().superRefine((value, ctx) => {
      const problem = cidrProblem(value)
      if (problem) ctx.addIssue({code: z.ZodIssueCode.custom, message: problem})
    }),
    // Linux interface names: 1-15 characters, no slash, no whitespace (IFNAMSIZ).
    interface: z.string().regex(/^[^\s/:]{1,15}$/, 'must be a network interface name (1-15 characters, no "/", ":" or spaces), e.g. eth0'),
  })
  .strict()

export const storageSchema = z
  .object({
    // manual: the operator moves the storage (a SAN console, a cable); ha failover waits for it
    // and verifies where it is attached.
    kind: z.enum(['mount', 'zfs', 'manual', 'none']).default('mount'),
    device: z.string().min(1).optional(),
    fstype: z.string().min(1).optional(),
    pool: z.string().min(1).optional(),
  })
  .strict()

/**
 * How both nodes configure their addresses at boot, so the failover edits the file a boot reads.
 * One value for the pair, not per node: the takeover installs the active node's network
 * configuration on the node taking over (the identity role of the backup manifest), so both
 * nodes must read the same kind of file.
 */
export const bootConfigKinds = ['ifupdown', 'networkmanager', 'ifcfg', 'netplan'] as const
const bootConfigKindsMessage = 'must be ifupdown (/etc/network/interfaces), networkmanager (/etc/NetworkManager/system-connections/*.nmconnection), ifcfg (/etc/sysconfig/network-scripts/ifcfg-*) or netplan (/etc/netplan/*.yaml)'

export const bootConfigSchema = z
  .object({
    kind: z.enum(bootConfigKinds, {errorMap: () => ({message: bootConfigKindsMessage})}).default('ifupdown'),
  })
  .strict()

const argvSchema = z.array(z.string().min(1)).min(1)

/** The product's services, as an init script or service manager drives them (LSB exit codes for status: 0 running, 3 stopped). */
export const servicesSchema = z
  .object({
    start: argvSchema.optional(),
    stop: argvSchema.optional(),
    status: argvSchema.optional(),
  })
  .strict()

export const verifySchema = z
  .object({
    // ha failover GETs it with fetch, which speaks http and https only: ftp:// or file:// could never pass.
    http: z
      .string()
      .url('must be a URL, e.g. http://198.18.1.10:8080/')
      .refine((url) => /^https?:\/\//i.test(url), {message: 'must be an http:// or https:// URL (ha failover GETs it and expects failover.verify.status), e.g. http://198.18.1.10:8080/'})
      .optional(),
    status: z.number().int().min(100).max(599).default(200),
    argv: argvSchema.optional(),
  })
  .strict()
  .refine((v) => (v.http === undefined) !== (v.argv === undefined), {message: 'set exactly one of http or argv'})

/**
 * What a failover moves. identity (seed 001's procedure): the node taking over becomes the active
 * node, hostname, /etc/hosts, ssh host keys and network configuration included, and reboots into
 * it. service: each node keeps its own name, address and keys (a cluster manager knows the nodes
 * by them); only the service moves: storage, service IPs, the services, and the saved state the
 * product needs (accounts re-owned by name, its config, cron, the version file).
 */
export const failoverModes = ['identity', 'service'] as const

export const failoverSchema = z
  .object({
    mode: z.enum(failoverModes, {errorMap: () => ({message: 'must be identity (the node taking over becomes the active node: hostname, host keys, network; seed 001) or service (only the service moves; required under a cluster manager)'})}).default('identity'),
    // Reboot the node taking over after the restore (seed 001 does), so it comes up as it will
    // after any later power cut: with the service IPs and storage from its boot configuration.
    reboot: z.boolean().default(true),
    reboot_timeout: duration.default('10m'),
    // How long to wait for a running ha backup (cron) to release its lock before the final backup.
    backup_lock_wait: duration.default('10m'),
    verify: verifySchema.optional(),
  })
  .strict()

/** A Pacemaker resource or group id: an XML ID as the CIB takes it (letters, digits, _ . -; not starting with a digit). */
const cibId = z.string().regex(/^[A-Za-z_][\w.-]{0,63}$/, 'must be a Pacemaker id: a letter or _ then letters, digits, _ . - (at most 64), e.g. ha-controller')

/** One fence device of the cluster: a stock fence agent (fence_ipmilan, fence_scsi, ...) and its parameters. */
export const fenceDeviceSchema = z
  .object({
    id: cibId,
    agent: z.string().regex(/^fence_[\w-]+$/, 'must be a fence agent name, e.g. fence_ipmilan or fence_scsi'),
    params: z.record(z.string().regex(/^[A-Za-z_][\w-]*$/, 'must be a parameter name'), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  })
  .strict()

/**
 * The cluster manager that decides when and where the service runs (docs/cluster.md). none: a
 * person does, with ha failover. pacemaker: Pacemaker and corosync do, through ha's OCF resource
 * agent (ocf:ha:controller); ha failover then asks Pacemaker to move the service instead of moving
 * it itself, and ha cluster setup prints the resources.
 */
export const clusterSchema = z
  .object({
    manager: z.enum(['none', 'pacemaker']).default('none'),
    // Pacemaker's ids: the group (storage, service IPs, controller, started in that order) and ha's resource in it.
    group: cibId.default('ha-service'),
    resource: cibId.default('ha-controller'),
    // How often Pacemaker asks whether the service runs (monitor), and answers (OCF_CHECK_LEVEL 10).
    monitor_interval: duration.default('10s'),
    deep_monitor_interval: duration.default('60s'),
    // Restart in place this many times, then move to the other node; failures older than failure_timeout are forgotten.
    migration_threshold: z.number().int().min(1).default(3),
    failure_timeout: duration.default('10m'),
    // How strongly the service stays where it runs (Pacemaker's resource-stickiness).
    stickiness: z.number().int().min(0).default(100),
    // In a split of the two nodes, the one running the service fences the other first: the other
    // waits this long (priority-fencing-delay). The price: a dead active node is fenced this much later.
    fencing_delay: duration.default('15s'),
    fencing: z.array(fenceDeviceSchema).default([]),
  })
  .strict()

const entryRole = z.enum(['accounts', 'identity', 'state']).default('state')

/**
 * One thing to save: a path (file, directory saved whole, or glob), or `any_of` alternatives for
 * what differs between platforms (Debian's /etc/network/interfaces, netplan, RHEL's
 * network-scripts): satisfied when at least one exists, and only then is nothing reported missing.
 */
export const backupEntrySchema = z.union([
  z.object({path: backupPath, required: z.boolean().default(false), role: entryRole}).strict(),
  z.object({any_of: z.array(backupPath).min(2), required: z.boolean().default(false), role: entryRole}).strict(),
])

export const backupSchema = z
  .object({
    // Relative to data_dir and inside it: archives must travel with the shared storage. An
    // absolute path or a ".." would put them on the node's own disk, where the peer never sees them.
    dir: z
      .string()
      .min(1)
      .refine((p) => !p.startsWith('/'), {message: 'must be relative to data_dir (it is where archives travel with the shared storage), e.g. .ha/backups'})
      .refine((p) => !p.split('/').includes('..'), {message: 'must stay inside data_dir: no ".." (archives must travel with the shared storage), e.g. .ha/backups'})
      .refine((p) => p.split('/').some((part) => part !== '' && part !== '.'), {message: 'must name a folder inside data_dir, not data_dir itself, e.g. .ha/backups'})
      .default('.ha/backups'),
    manifest: z.string().min(1).default('builtin:opscenter'),
    include: z.array(z.union([backupPath, backupEntrySchema])).default([]),
    exclude: z.array(z.string().min(1)).default([]),
    keep: z.number().int().min(1).default(24),
    max_age: duration.default('2h'),
  })
  .strict()

/** A libvirt domain name as ha accepts it in an argv and a journal (no spaces, no slash). */
export const guestName = z.string().regex(/^[A-Za-z0-9][\w.+-]{0,63}$/, 'must be a libvirt domain name: letters, digits, _ . + - (at most 64, not starting with a punctuation mark), as virsh list shows it')

/**
 * A virtual machine (or container) that moves with the service (docs/guests.md). priority: higher
 * is favoured (started first, and less favoured guests on the target are shut down to make room
 * for it). with: guests that must run on the same node; apart: guests that must never.
 * move: live (virsh migrate --live when both nodes are up and the disks allow it, else restart)
 * or restart (shut down, the definition carried over, started). disks: storage (on ha's shared
 * storage: they move with it, so only restart), shared (a path both nodes see at once) or copy
 * (copied by the live migration: --copy-storage-all).
 */
export const guestSchema = z
  .object({
    name: guestName,
    priority: z.number().int().default(0),
    with: z.array(guestName).default([]),
    apart: z.array(guestName).default([]),
    move: z.enum(['live', 'restart'], {errorMap: () => ({message: 'must be live (migrate while both nodes are up, else restart) or restart (shut down, define on the target, start); ha never suspends or pauses a guest'})}).default('restart'),
    shutdown: z
      .object({
        // acpi: the power button; agent: the QEMU guest agent; signal: SIGTERM (LXC containers).
        mode: z.enum(['acpi', 'agent', 'signal'], {errorMap: () => ({message: 'must be acpi (the power button), agent (the QEMU guest agent) or signal (SIGTERM, for LXC)'})}).default('acpi'),
        // After this, the guest is destroyed (powered off hard), as Pacemaker's VirtualDomain does.
        timeout: duration.default('2m'),
      })
      .strict()
      .default({}),
    disks: z.enum(['storage', 'shared', 'copy'], {errorMap: () => ({message: 'must be storage (on ha\'s shared storage), shared (a path both nodes see at once) or copy (copied by a live migration)'})}).default('storage'),
  })
  .strict()

export const configSchema = z
  .object({
    data_dir: absolutePath,
    version_file: absolutePath.default('/n1gc-setup/.version.properties'),
    version_key: z.string().min(1).default('product.version'),
    nodes: z
      .object({primary: nodeSchema, secondary: nodeSchema})
      .strict(),
    service_ips: z.array(serviceIpSchema).default([]),
    storage: storageSchema.default({}),
    boot_config: bootConfigSchema.default({}),
    services: servicesSchema.default({}),
    failover: failoverSchema.default({}),
    cluster: clusterSchema.default({}),
    backup: backupSchema.default({}),
    guests: z.array(guestSchema).default([]),
  })
  .strict()

export type Config = z.infer<typeof configSchema>
export type NodeConfig = z.infer<typeof nodeSchema>
export type NodeName = keyof Config['nodes']
export type FailoverMode = Config['failover']['mode']
export type GuestConfig = z.infer<typeof guestSchema>
export type LibvirtConfig = z.infer<typeof libvirtSchema>
export type BackupEntryConfig = z.infer<typeof backupEntrySchema>

export const nodeNames: NodeName[] = ['primary', 'secondary']

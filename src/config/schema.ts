import {z} from 'zod'

import {parseDuration} from './duration.js'

/**
 * The one configuration file, as a schema. Every key here is documented in
 * templates/ha.example.yaml; a test loads that file, so the two cannot drift apart.
 * Keys are snake_case; the same words are used for flags (kebab-case) and JSON fields.
 */

const absolutePath = z
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
  })
  .strict()

export const serviceIpSchema = z
  .object({
    address: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'must be an IPv4 address with prefix length, e.g. 198.18.1.10/24'),
    interface: z.string().min(1),
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
    http: z.string().url('must be a URL, e.g. http://198.18.1.10:8080/').optional(),
    status: z.number().int().min(100).max(599).default(200),
    argv: argvSchema.optional(),
  })
  .strict()
  .refine((v) => (v.http === undefined) !== (v.argv === undefined), {message: 'set exactly one of http or argv'})

export const failoverSchema = z
  .object({
    // Reboot the node taking over after the restore (seed 001 does), so it comes up as it will
    // after any later power cut: with the service IPs and storage from its boot configuration.
    reboot: z.boolean().default(true),
    reboot_timeout: duration.default('10m'),
    // How long to wait for a running ha backup (cron) to release its lock before the final backup.
    backup_lock_wait: duration.default('10m'),
    verify: verifySchema.optional(),
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
    dir: z.string().min(1).default('.ha/backups'),
    manifest: z.string().min(1).default('builtin:opscenter'),
    include: z.array(z.union([backupPath, backupEntrySchema])).default([]),
    exclude: z.array(z.string().min(1)).default([]),
    keep: z.number().int().min(1).default(24),
    max_age: duration.default('2h'),
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
    services: servicesSchema.default({}),
    failover: failoverSchema.default({}),
    backup: backupSchema.default({}),
  })
  .strict()

export type Config = z.infer<typeof configSchema>
export type NodeConfig = z.infer<typeof nodeSchema>
export type NodeName = keyof Config['nodes']
export type BackupEntryConfig = z.infer<typeof backupEntrySchema>

export const nodeNames: NodeName[] = ['primary', 'secondary']

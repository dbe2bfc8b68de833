import type {ZodTypeAny} from 'zod'

import {absolutePath, backupSchema, bootConfigSchema, cidrProblem, configSchema, nodeSchema, serviceIpSchema, sshSchema, storageSchema} from '../config/schema.js'

/**
 * Each answer `ha init` takes, checked by the very schema rule that checks that key in a config
 * file (src/config/schema.ts), so a flag, a typed answer and a hand-edited file are judged alike.
 * A check returns the problem in words, or undefined when the value is fine.
 */
export type FieldCheck = (value: string) => string | undefined

function bySchema(schema: ZodTypeAny, convert: (value: string) => unknown = (v) => v): FieldCheck {
  return (value) => {
    const result = schema.safeParse(convert(value))
    if (result.success) return undefined
    const issue = result.error.issues[0]
    return issue.code === 'invalid_type' ? `must be ${issue.expected}` : issue.message
  }
}

const port = (value: string) => (/^\d+$/.test(value) ? Number(value) : value)

export const fieldChecks = {
  address: bySchema(sshSchema.shape.host),
  'backup-dir': bySchema(backupSchema.shape.dir),
  'boot-config': bySchema(bootConfigSchema.shape.kind),
  'data-dir': bySchema(configSchema.shape.data_dir),
  hostname: bySchema(nodeSchema.shape.hostname),
  'identity-file': bySchema(sshSchema.shape.identity_file),
  interface: bySchema(serviceIpSchema.shape.interface),
  'known-hosts': bySchema(sshSchema.shape.known_hosts),
  peer: bySchema(sshSchema.shape.host),
  'peer-hostname': bySchema(nodeSchema.shape.hostname),
  'service-ip': (value: string) => cidrProblem(value),
  services: bySchema(absolutePath),
  'ssh-port': bySchema(sshSchema.shape.port, port),
  'ssh-user': bySchema(sshSchema.shape.user),
  storage: bySchema(storageSchema.shape.kind),
  'storage-device': bySchema(storageSchema.shape.device),
  'version-file': bySchema(configSchema.shape.version_file),
} satisfies Record<string, FieldCheck>

export type FieldName = keyof typeof fieldChecks

/** A host key fingerprint as ssh-keygen -l prints it (SHA256, unpadded base64). */
export function fingerprintProblem(value: string): string | undefined {
  return /^SHA256:[A-Za-z0-9+/]{43}$/.test(value) ? undefined : 'must be a SHA256 fingerprint as ssh-keygen -lf prints it, e.g. SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s'
}

import {ConfigError} from '../core/errors.js'
import type {Config} from './schema.js'

/**
 * Keys the schema leaves optional that a command cannot work without. The command refuses to
 * start without them (a ConfigError naming the keys, before anything runs or is printed), and
 * `ha config check` says which command needs which missing key, as a warning: the rest of ha
 * (backup, check, restore) works without them.
 */
export interface CommandNeed {
  command: 'ha failover' | 'ha rejoin'
  keys: Array<'services.start' | 'services.status' | 'services.stop'>
  why: string
}

export const commandNeeds: CommandNeed[] = [
  {command: 'ha failover', keys: ['services.start', 'services.stop', 'services.status'], why: 'it stops the product on the active node, starts it on the other and checks it with these commands'},
  {command: 'ha rejoin', keys: ['services.stop', 'services.status'], why: 'it stops the product on the node that rejoins and proves it stopped with these commands'},
]

const servicesExample = 'services: {start: [/etc/init.d/xvm, start], stop: [/etc/init.d/xvm, stop], status: [/etc/init.d/xvm, status]}'

/** The keys `command` needs that `config` does not set. */
export function missingFor(config: Config, need: CommandNeed): string[] {
  return need.keys.filter((key) => config.services[key.slice('services.'.length) as 'start' | 'status' | 'stop'] === undefined)
}

/** A key a command needs that is not set, and what for. */
export interface UnsetKey {
  key: string
  why: string
}

/** The keys `command` needs and `config` lacks: its services, then `more` (the storage driver's, for ha failover). */
export function unsetFor(config: Config, command: CommandNeed['command'], more: UnsetKey[] = []): UnsetKey[] {
  const need = commandNeeds.find((n) => n.command === command)!
  return [...missingFor(config, need).map((key) => ({key, why: need.why})), ...more]
}

/** Refuses, naming the config and the keys, when `command` cannot run with this config. */
export function requireNeeds(config: Config, path: string, command: CommandNeed['command'], more: UnsetKey[] = []): void {
  const unset = unsetFor(config, command, more)
  if (unset.length === 0) return
  const whys = [...new Set(unset.map((u) => u.why))]
  const services = unset.some((u) => u.key.startsWith('services.'))
  throw new ConfigError(`${path}: ${unset.map((u) => u.key).join(', ')} not set: ${command} needs ${unset.length === 1 ? 'it' : 'them'}, as ${whys.join('; and ')}`, {
    actions: [`add ${unset.length === 1 ? 'it' : 'them'} to ${path}${services ? `, e.g. ${servicesExample}` : ''}; then ha config check`],
  })
}

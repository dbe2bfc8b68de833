import type {Config} from '../../config/schema.js'
import type {BootConfigDriver} from './driver.js'
import {ifupdown} from './ifupdown.js'

export type {BootConfigDriver, ServiceIp} from './driver.js'

/**
 * The one place a node's network boot configuration system is chosen. The config has no field
 * for it yet: every node is Debian's ifupdown. NetworkManager, ifcfg and netplan register here
 * (with the config field that names them) when they land.
 */
export function bootConfigDriver(_config: Config): BootConfigDriver {
  return ifupdown
}

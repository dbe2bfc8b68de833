import {posix} from 'node:path'

import type {Config} from '../../config/schema.js'
import type {BootConfigDriver, BootConfigKind} from './driver.js'
import {ifcfg} from './ifcfg.js'
import {ifupdown} from './ifupdown.js'
import {netplan} from './netplan.js'
import {networkmanager} from './networkmanager.js'

export {type BootAddress, type BootConfigDriver, type BootConfigKind, BootConfigRefusal, type BootFile, type ServiceIp} from './driver.js'
export {addition, dryRun, fileHolds, filesHold, removals} from './edits.js'
export {bootFilesArgv, type ListedFile, parseBootFiles} from './listing.js'
export {type BootConfigFound, detectBootConfig} from './detect.js'

/** Every system ha edits, by the config's name for it (ha init and ha check look for each). */
export const bootConfigDrivers: Record<BootConfigKind, BootConfigDriver> = {ifcfg, ifupdown, netplan, networkmanager}

/**
 * The one place a node's network boot configuration system is chosen: the config's
 * boot_config.kind, ifupdown unless it says otherwise (so every config written before the field
 * means what it meant).
 */
export function bootConfigDriver(config: Config): BootConfigDriver {
  return bootConfigDrivers[config.boot_config.kind]
}

/** Is this host path one of the files the driver reads (a kept network configuration file, say)? */
export function ownsPath(driver: BootConfigDriver, path: string): boolean {
  return posix.dirname(path) === driver.dir && driver.matches(posix.basename(path))
}

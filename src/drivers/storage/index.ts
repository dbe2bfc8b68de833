import type {Config} from '../../config/schema.js'
import type {StorageDriver, StorageKind} from './driver.js'
import {manualDriver} from './manual.js'
import {mountDriver} from './mount.js'
import {noneDriver} from './none.js'
import {zfsDriver} from './zfs.js'

export type {Attachment, DeviceRule, PacemakerStorage, StorageBootEntry, StorageCommands, StorageDriver, StorageKind, StorageWords} from './driver.js'

/**
 * Every storage.kind the schema allows, with its driver: a kind added to the schema without one
 * here does not compile. A new driver is its file plus its line here.
 */
const drivers: Record<StorageKind, (config: Config) => StorageDriver> = {
  manual: manualDriver,
  mount: mountDriver,
  none: noneDriver,
  zfs: zfsDriver,
}

/** The one place the storage's kind is chosen: the driver for config.storage.kind. */
export function storageDriver(config: Config): StorageDriver {
  return drivers[config.storage.kind](config)
}


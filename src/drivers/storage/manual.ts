import type {Config} from '../../config/schema.js'
import type {StorageDriver} from './driver.js'
import {findmntObservation} from './mount.js'

/**
 * kind manual: the operator moves the storage (a SAN console, a cable) and mounts it at data_dir;
 * ha failover waits for it and verifies where it is attached, with findmnt as for kind mount. ha
 * runs nothing to move it and edits no boot configuration for it.
 */
export function manualDriver(config: Config): StorageDriver {
  const seen = findmntObservation(config.data_dir)
  return {
    ...seen,
    kind: 'manual',
    operatorMoves: true,
    pacemaker: () => ({
      refused: {
        action: 'set storage.kind to mount (storage.device, fstype) or zfs (storage.pool), so the cluster moves the storage itself',
        summary: 'storage.kind is manual: a person moves the storage, but under Pacemaker the cluster must attach it on whichever node it starts the service, with nobody there',
      },
    }),
    // As ha check has always shown it for every kind but mount: its evidence names storage.pool,
    // not the mountpoints it looked at.
    words: {...seen.words, evidence: () => ({pool: config.storage.pool ?? null})},
  }
}

import type {Config} from '../../config/schema.js'
import type {StorageDriver} from './driver.js'
import {findmntObservation} from './mount.js'

/**
 * kind none: data_dir is an ordinary folder (demos and tests). Nothing moves, nothing checks
 * where it lives, no node counts as holding it. The roles' probe batch still asks findmnt, as
 * it always has; the answer is never read (tracked is false).
 */
export function noneDriver(config: Config): StorageDriver {
  return {
    ...findmntObservation(config.data_dir),
    kind: 'none',
    operatorMoves: false,
    pacemaker: () => ({
      refused: {
        action: 'set storage.kind to mount (storage.device, fstype) or zfs (storage.pool): the shared storage data_dir lives on',
        summary: 'storage.kind is none: data_dir is no shared storage, so a node the cluster moves the service to would start it without the data',
      },
    }),
    tracked: false,
  }
}

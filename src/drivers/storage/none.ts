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
    tracked: false,
  }
}

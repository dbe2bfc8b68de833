import {acquireStorage} from './acquire-storage.js'
import {confirmFenced} from './confirm-fenced.js'
import {finalBackup} from './final-backup.js'
import {holdIps} from './hold-ips.js'
import {preflight} from './preflight.js'
import {reboot} from './reboot.js'
import {releaseIps} from './release-ips.js'
import {releaseStorage} from './release-storage.js'
import {restoreTakeover} from './restore-takeover.js'
import type {Step} from './step.js'
import {startServices} from './start-services.js'
import {stopServices} from './stop-services.js'
import {takeIps} from './take-ips.js'
import {verify} from './verify.js'

/**
 * The runbook, in order. Fencing comes before anything touches the active node: when that node
 * does not answer, the steps that would act on it are skipped only once it is confirmed fenced.
 */
export const failoverSteps: Step[] = [
  preflight,
  confirmFenced,
  finalBackup,
  stopServices,
  releaseIps,
  releaseStorage,
  acquireStorage,
  restoreTakeover,
  holdIps,
  reboot,
  takeIps,
  startServices,
  verify,
]

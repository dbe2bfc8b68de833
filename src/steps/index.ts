import {acquireStorage} from './acquire-storage.js'
import {confirmFenced} from './confirm-fenced.js'
import {finalBackup} from './final-backup.js'
import {guestsLeave} from './guests-leave.js'
import {guestsStart} from './guests-start.js'
import {holdIps} from './hold-ips.js'
import {preflight} from './preflight.js'
import {reboot} from './reboot.js'
import {releaseIps} from './release-ips.js'
import {releaseStorage} from './release-storage.js'
import {restoreService} from './restore-service.js'
import {restoreTakeover} from './restore-takeover.js'
import type {Config} from '../config/schema.js'
import type {Step} from './step.js'
import {startServices} from './start-services.js'
import {stopServices} from './stop-services.js'
import {takeIps} from './take-ips.js'
import {verify} from './verify.js'

/**
 * The runbook, in order, for failover.mode: identity (seed 001). Fencing comes before anything
 * touches the active node: when that node does not answer, the steps that would act on it are
 * skipped only once it is confirmed fenced.
 */
export const identityFailoverSteps: Step[] = [
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

/**
 * failover.mode: service: the same runbook without the identity takeover and the reboot. The node
 * taking over keeps its name, keys and network configuration, so nothing needs a boot to take
 * effect and no address can come up from a restored boot file (hold-ips has nothing to hold).
 */
export const serviceFailoverSteps: Step[] = [
  preflight,
  confirmFenced,
  finalBackup,
  stopServices,
  releaseIps,
  releaseStorage,
  acquireStorage,
  restoreService,
  takeIps,
  startServices,
  verify,
]

/**
 * With guests (docs/guests.md): they leave the active node after the final backup, before its
 * services stop (the reverse of their start), and start on the node taking over once its services
 * run, before verify. Without guests the runbook is exactly the one above.
 */
export function withGuests(steps: Step[]): Step[] {
  return steps.flatMap((step) => (step.id === 'final-backup' ? [step, guestsLeave] : step.id === 'verify' ? [guestsStart, step] : [step]))
}

export function failoverSteps(config: Pick<Config, 'failover'> & Partial<Pick<Config, 'guests'>>): Step[] {
  const steps = config.failover.mode === 'service' ? serviceFailoverSteps : identityFailoverSteps
  return (config.guests ?? []).length > 0 ? withGuests(steps) : steps
}

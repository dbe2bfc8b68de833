import type {Colors} from '../core/colors.js'
import type {UnlockResult} from './break.js'

export function renderUnlock(r: UnlockResult, c: Colors): string {
  if (!r.broken && r.left) return `${r.lock} kept: ${r.left}`
  if (!r.broken) return `no lock at ${r.lock}: nothing to do`
  const what = r.holder ? `"${r.holder.command}" of ${r.holder.host} (pid ${r.holder.pid}, since ${r.holder.since})` : `an untrusted lock (it ${r.untrusted})`
  return [`${c.green('unlocked')} ${r.lock}: removed the lock of ${what}`, ...(r.holder_status ? [`  ${r.holder_status.summary}`] : []), `  recorded in ${r.journal}`].join('\n')
}

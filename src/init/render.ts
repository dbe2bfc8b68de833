import {renderReport} from '../check/render.js'
import type {Colors} from '../core/colors.js'
import type {InitResult} from './init.js'

export function renderInit(r: InitResult, c: Colors): string {
  const out = [
    `${c.green(r.replaced ? 'replaced:' : 'wrote:')} ${r.path} (this machine is the ${r.node})`,
    ...r.host_keys.map((k) => `  host key of the ${k.node} (${k.host}): ${k.fingerprint}, ${k.how}`),
    ...(r.ssh_test === 'skipped' ? [`  ${c.yellow('not verified')} (--no-ssh-test):`, ...r.not_verified.map((v) => `    - ${v}`)] : []),
    `  every other key, with its default: ${r.example}`,
    `  next: copy ${r.path} to the same place on the other node; ha schedule install on both`,
  ]
  if (r.check) out.push('', renderReport(r.check, c))
  return out.join('\n')
}

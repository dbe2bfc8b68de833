import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {describe, it} from 'node:test'

import {parseConfig} from '../../src/config/load.js'

const minimal = (primaryExtra: string) => `data_dir: /var/opt/sun/xvm
nodes:
  primary:
    hostname: ctl-a
${primaryExtra}
  secondary:
    hostname: ctl-b
`

describe('nodes.X.reboot_command', () => {
  it('defaults to /sbin/reboot', () => {
    const config = parseConfig(minimal(''), 'ha.yaml')
    assert.deepEqual(config.nodes.primary.reboot_command, ['/sbin/reboot'])
  })

  it('is documented in the example config, which still loads', async () => {
    const text = await readFile(new URL('../../templates/ha.example.yaml', import.meta.url), 'utf8')
    assert.deepEqual(parseConfig(text, 'ha.example.yaml').nodes.primary.reboot_command, ['/sbin/reboot'])
  })

  it('refuses a shell string, naming the file, line and field', () => {
    assert.throws(
      () => parseConfig(minimal('    reboot_command: "shutdown -r now"'), 'ha.yaml'),
      (error: Error) => /ha\.yaml:5: nodes\.primary\.reboot_command: must be array, not string/.test(error.message),
    )
  })

  it('refuses an empty argv', () => {
    assert.throws(() => parseConfig(minimal('    reboot_command: []'), 'ha.yaml'), /nodes\.primary\.reboot_command/)
  })
})

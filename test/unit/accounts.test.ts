import assert from 'node:assert/strict'
import {test} from 'node:test'

import {AccountFileError, parseAccounts} from '../../src/facts/accounts.js'

const passwd = 'root:x:0:0:root:/root:/bin/bash\nxvm:x:901:901::/var/opt/sun/xvm:/bin/sh\n'

test('maps names to ids and back', () => {
  const t = parseAccounts(passwd, 'passwd', '/etc/passwd')
  assert.equal(t.byName.get('xvm'), 901)
  assert.equal(t.byId.get(0), 'root')
  assert.equal(parseAccounts('xvm:x:901:jet,oracle\n', 'group', '/etc/group').byName.get('xvm'), 901)
})

test('strict parsing refuses what would make a name ambiguous, naming file and line', () => {
  const bad: Array<[string, RegExp]> = [
    [`${passwd}xvm:x:902:902::/:/bin/sh\n`, /\/etc\/passwd:3: name "xvm" appears twice/],
    [`${passwd}other:x:901:901::/:/bin/sh\n`, /\/etc\/passwd:3: id 901 appears twice/],
    [`# comment\n${passwd}`, /\/etc\/passwd:1: comment line/],
    [`${passwd}+@netgroup::::::\n`, /\/etc\/passwd:3: NIS compat line/],
    [`${passwd}short:x:5\n`, /\/etc\/passwd:3: expected 7 fields/],
    [`${passwd}bad:x:abc:1::/:/bin/sh\n`, /\/etc\/passwd:3: bad id "abc"/],
  ]
  for (const [text, expected] of bad) {
    assert.throws(() => parseAccounts(text, 'passwd', '/etc/passwd'), (e: unknown) => e instanceof AccountFileError && expected.test(e.message))
  }
})

test('lenient parsing (backup only records names) keeps the first name of a duplicated id', () => {
  const t = parseAccounts(`${passwd}# c\nother:x:901:901::/:/bin/sh\n`, 'passwd', 'p', false)
  assert.equal(t.byId.get(901), 'xvm')
})

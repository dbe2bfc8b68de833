import assert from 'node:assert/strict'
import {test} from 'node:test'

import {nextCronRuns, parseCronFields} from '../../src/schedule/cron-times.js'

// Local time, as cron reads its lines: built with the local-time Date constructor.
const at = (y: number, mo: number, d: number, h: number, mi: number) => new Date(y, mo - 1, d, h, mi)

test('the hourly line runs at its minute of every hour, strictly after now', () => {
  assert.deepEqual(nextCronRuns('7 * * * *', at(2026, 11, 29, 18, 7)), [at(2026, 11, 29, 19, 7), at(2026, 11, 29, 20, 7), at(2026, 11, 29, 21, 7)])
  assert.deepEqual(nextCronRuns('0 * * * *', at(2026, 12, 31, 23, 30), 2), [at(2027, 1, 1, 0, 0), at(2027, 1, 1, 1, 0)])
  assert.deepEqual(nextCronRuns('07 * * * *', at(2026, 11, 29, 18, 6), 1), [at(2026, 11, 29, 18, 7)])
})

test('lists, ranges, steps, and day-of-month OR day-of-week as crontab(5) says', () => {
  assert.deepEqual(nextCronRuns('*/20 9-10 * * *', at(2026, 11, 29, 10, 30)), [at(2026, 11, 29, 10, 40), at(2026, 11, 30, 9, 0), at(2026, 11, 30, 9, 20)])
  // 2026-11-29 is a Sunday: "the 1st, or any Monday" runs on Monday the 30th, then Tuesday the 1st.
  assert.deepEqual(nextCronRuns('0 3 1 * 1', at(2026, 11, 29, 12, 0), 2), [at(2026, 11, 30, 3, 0), at(2026, 12, 1, 3, 0)])
  assert.deepEqual(nextCronRuns('30 4 * * 7', at(2026, 11, 28, 0, 0), 1), [at(2026, 11, 29, 4, 30)], '7 is Sunday too')
})

test('what is not a crontab time expression is refused, not guessed', () => {
  for (const bad of ['60 * * * *', '* * * *', '@hourly', '5-1 * * * *', '*/0 * * * *', 'a * * * *']) {
    assert.equal(parseCronFields(bad), undefined, bad)
    assert.equal(nextCronRuns(bad, new Date()), undefined, bad)
  }
})

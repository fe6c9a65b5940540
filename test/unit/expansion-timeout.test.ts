import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  calendarBudget,
  expandOneWithinBudget,
  expansionWindow,
  TIMED_OUT_WARNING,
} from '../../src/calendar/parsing/expand.js';
import { DEFAULT_TIME_BUDGET_MS } from '../../src/ical/expand-object.js';

/*
 * A series cut short by its time budget, not by its size, is expanded once more (a thread's first
 * expansion can be that slow on a busy machine); one that runs out of time again is stored with a
 * warning saying occurrences are missing, never silently short.
 */

const window = expansionWindow(Date.parse('2026-05-18T06:00:00Z'));

const DAILY = {
  remoteId: 'daily',
  etag: '"1"',
  ics: [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//t//t//EN',
    'BEGIN:VEVENT',
    'UID:daily',
    'DTSTAMP:20260501T000000Z',
    'DTSTART:20260520T090000Z',
    'DTEND:20260520T093000Z',
    'RRULE:FREQ=DAILY;COUNT=60',
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n'),
};

/**
 * The clock as the expander's budget checks see it: each check `jumps` (once, or every time) moves
 * it a little past the per-object budget, as a descheduled thread would find it.
 */
function slowClock(jumps: 'once' | 'always'): void {
  const real = performance.now.bind(performance);
  let offset = 0;
  let jumped = false;
  vi.spyOn(performance, 'now').mockImplementation(() => {
    const check = new Error().stack?.includes('overBudget') ?? false;
    if (check && (jumps === 'always' || !jumped)) {
      offset += DEFAULT_TIME_BUDGET_MS + 50;
      jumped = true;
    }
    return real() + offset;
  });
}

afterEach(() => vi.restoreAllMocks());

describe('a series that runs out of time while expanding', () => {
  it('is expanded again, and stored whole when the second attempt finishes', () => {
    slowClock('once');
    const stored = expandOneWithinBudget(DAILY, window, 'UTC', calendarBudget());
    expect(stored?.result.ok).toBe(true);
    if (!stored?.result.ok) return;
    expect(stored.result.occurrences).toHaveLength(60);
    expect(stored.result.timedOut).toBeUndefined();
    expect(stored.result.warnings ?? []).not.toContain(TIMED_OUT_WARNING);
  });

  it('is stored with a warning when it runs out of time again', () => {
    slowClock('always');
    const budget = calendarBudget();
    const stored = expandOneWithinBudget(DAILY, window, 'UTC', budget);
    expect(stored?.result.ok).toBe(true);
    if (!stored?.result.ok) return;
    expect(stored.result.occurrences.length).toBeLessThan(60);
    expect(stored.result.timedOut).toBe(true);
    expect(stored.result.warnings).toContain(TIMED_OUT_WARNING);
    // Both attempts were paid for out of the calendar's time budget.
    expect(budget.expandMs).toBeLessThan(budget.limits.expandMs - 2 * DEFAULT_TIME_BUDGET_MS);
  });

  it('is not tried again when the calendar has no time left for it', () => {
    // A second attempt would finish (the clock jumps once), so a cut series shows none was made.
    slowClock('once');
    const budget = calendarBudget({ ...calendarBudget().limits, expandMs: DEFAULT_TIME_BUDGET_MS - 50 });
    const stored = expandOneWithinBudget(DAILY, window, 'UTC', budget);
    expect(stored?.result.ok && stored.result.timedOut).toBe(true);
    expect(stored?.result.ok && stored.result.warnings).toContain(TIMED_OUT_WARNING);
    expect(budget.expandMs).toBeLessThanOrEqual(0);
  });
});

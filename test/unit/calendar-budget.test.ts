import { describe, expect, it } from 'vitest';
import {
  budgetWarning,
  CALENDAR_LIMITS,
  calendarBudget,
  expansionWindow,
  type CalendarBudget,
  type StoredObject,
} from '../../src/calendar/parsing/expand.js';
import { expand } from '../../src/calendar/parsing/tasks.js';
import type { RemoteEvent } from '../../src/calendar/port/provider.js';

const window = expansionWindow(Date.parse('2026-05-18T06:00:00Z'));

/** A daily series of `count` occurrences inside the stored span, as one remote object. */
function series(uid: string, count: number) {
  const ics = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//t//t//EN',
    'BEGIN:VEVENT',
    `UID:${uid}`,
    'DTSTAMP:20260501T000000Z',
    'DTSTART:20260520T090000Z',
    'DTEND:20260520T093000Z',
    `RRULE:FREQ=DAILY;COUNT=${count}`,
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n');
  return { remoteId: uid, etag: null, ics };
}

/** The parser's task over all of `events` at once, as a sync spends one budget across its tasks. */
function expandAll(events: RemoteEvent[], budget: CalendarBudget): StoredObject[] {
  return expand({ events, window, zone: 'UTC', budget, occurrencesPerAnswer: Number.POSITIVE_INFINITY })
    .stored;
}

const occurrencesOf = (object: StoredObject) => (object.result.ok ? object.result.occurrences.length : -1);

describe('the budget of one sync for a whole calendar', () => {
  it('keeps objects up to the occurrence budget, cuts the one that reaches it, and says so', () => {
    const budget = calendarBudget({ ...CALENDAR_LIMITS, occurrences: 25 });
    const stored = expandAll(
      ['a', 'b', 'c', 'd'].map((uid) => series(uid, 10)),
      budget,
    );
    expect(stored.map(occurrencesOf)).toEqual([10, 10, 5, 0]);
    expect(budgetWarning(budget)).toBe(
      'the calendar has more than 25 occurrences in the stored span; only the first 25 are used',
    );
  });

  it('leaves out the objects beyond the object and time budgets, to be read on a later sync', () => {
    const byCount = calendarBudget({ ...CALENDAR_LIMITS, objects: 2 });
    const kept = expandAll(
      ['a', 'b', 'c'].map((uid) => series(uid, 3)),
      byCount,
    );
    expect(kept.map((object) => object.remoteId)).toEqual(['a', 'b']);
    expect(budgetWarning(byCount)).toContain('1 event was not read because the calendar exceeds the limits');

    const byTime = calendarBudget({ ...CALENDAR_LIMITS, expandMs: 0 });
    expect(expandAll([series('a', 3), series('b', 3)], byTime)).toEqual([]);
    expect(budgetWarning(byTime)).toContain('2 events were not read');
  });

  it('says nothing when the calendar fits', () => {
    const budget = calendarBudget();
    expect(expandAll([series('a', 3)], budget).map(occurrencesOf)).toEqual([3]);
    expect(budgetWarning(budget)).toBeNull();
  });
});

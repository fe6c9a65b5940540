import { Temporal } from 'temporal-polyfill';
import { describe, expect, it } from 'vitest';
import {
  expandSeries,
  type RecurrenceRule,
  type SeriesExpansion,
} from '../../src/domain/booking-recurrence.js';

const HOUR = 3_600_000;

function firstAt(iso: string, hours = 1) {
  const start = Date.parse(iso);
  return { start, end: start + hours * HOUR };
}

function starts(expansion: SeriesExpansion): string[] {
  if (!expansion.ok) throw new Error(JSON.stringify(expansion.problems));
  return expansion.occurrences.map((o) => new Date(o.start).toISOString().replace('.000Z', 'Z'));
}

function problems(expansion: SeriesExpansion) {
  if (expansion.ok) throw new Error(`expected problems, got ${expansion.occurrences.length} occurrences`);
  return expansion.problems;
}

function localTimes(expansion: SeriesExpansion, zone: string): string[] {
  if (!expansion.ok) throw new Error(JSON.stringify(expansion.problems));
  return expansion.occurrences.map((o) =>
    Temporal.Instant.fromEpochMilliseconds(o.start).toZonedDateTimeISO(zone).toPlainTime().toString(),
  );
}

const weekly = (count: number, extra: Partial<RecurrenceRule> = {}): RecurrenceRule => ({
  frequency: 'weekly',
  count,
  ...extra,
});

describe('expandSeries: wall-clock time across daylight-saving changes', () => {
  it('keeps 09:00 in New York across the fall-back of 2026-11-01', () => {
    const series = expandSeries(firstAt('2026-10-20T13:00:00Z'), 'America/New_York', weekly(3));
    expect(starts(series)).toEqual(['2026-10-20T13:00:00Z', '2026-10-27T13:00:00Z', '2026-11-03T14:00:00Z']);
    expect(localTimes(series, 'America/New_York')).toEqual(['09:00:00', '09:00:00', '09:00:00']);
  });

  it('keeps 09:00 in Berlin across the fall-back of 2026-10-25', () => {
    const series = expandSeries(firstAt('2026-10-20T07:00:00Z'), 'Europe/Berlin', weekly(2));
    expect(starts(series)).toEqual(['2026-10-20T07:00:00Z', '2026-10-27T08:00:00Z']);
  });

  it('keeps 09:00 across the spring-forwards of 2027-03-14 (New York) and 2027-03-28 (Berlin)', () => {
    expect(starts(expandSeries(firstAt('2027-03-09T14:00:00Z'), 'America/New_York', weekly(2)))).toEqual([
      '2027-03-09T14:00:00Z',
      '2027-03-16T13:00:00Z',
    ]);
    expect(starts(expandSeries(firstAt('2027-03-23T08:00:00Z'), 'Europe/Berlin', weekly(2)))).toEqual([
      '2027-03-23T08:00:00Z',
      '2027-03-30T07:00:00Z',
    ]);
  });

  it('moves a wall time inside the spring-forward gap forward by the gap (02:30 → 03:30 EDT)', () => {
    const series = expandSeries(firstAt('2027-03-13T07:30:00Z'), 'America/New_York', {
      frequency: 'daily',
      count: 3,
    });
    expect(starts(series)).toEqual(['2027-03-13T07:30:00Z', '2027-03-14T07:30:00Z', '2027-03-15T06:30:00Z']);
    expect(localTimes(series, 'America/New_York')).toEqual(['02:30:00', '03:30:00', '02:30:00']);
  });

  it('gives a repeated wall time its earlier offset (01:30 EDT on 2026-11-01)', () => {
    const series = expandSeries(firstAt('2026-10-31T05:30:00Z'), 'America/New_York', {
      frequency: 'daily',
      count: 3,
    });
    expect(starts(series)).toEqual(['2026-10-31T05:30:00Z', '2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z']);
  });

  it('keeps the elapsed duration of the first occurrence', () => {
    const series = expandSeries(firstAt('2026-10-31T05:00:00Z', 2), 'America/New_York', {
      frequency: 'daily',
      count: 2,
    });
    if (!series.ok) throw new Error('expected a series');
    expect(series.occurrences.map((o) => o.end - o.start)).toEqual([2 * HOUR, 2 * HOUR]);
  });
});

describe('expandSeries: frequencies', () => {
  it('daily with an interval', () => {
    expect(
      starts(
        expandSeries(firstAt('2026-05-18T09:00:00Z'), 'UTC', { frequency: 'daily', interval: 3, count: 3 }),
      ),
    ).toEqual(['2026-05-18T09:00:00Z', '2026-05-21T09:00:00Z', '2026-05-24T09:00:00Z']);
  });

  it('weekly on several weekdays, from the start onwards (Wednesday 2026-05-20)', () => {
    const series = expandSeries(
      firstAt('2026-05-20T09:00:00Z'),
      'UTC',
      weekly(5, { byWeekday: ['fri', 'mon', 'wed'] }),
    );
    expect(starts(series)).toEqual([
      '2026-05-20T09:00:00Z',
      '2026-05-22T09:00:00Z',
      '2026-05-25T09:00:00Z',
      '2026-05-27T09:00:00Z',
      '2026-05-29T09:00:00Z',
    ]);
  });

  it('every other week: the weeks run Monday to Sunday, the start week first', () => {
    const series = expandSeries(
      firstAt('2026-05-20T09:00:00Z'),
      'UTC',
      weekly(4, { interval: 2, byWeekday: ['mon', 'wed'] }),
    );
    expect(starts(series)).toEqual([
      '2026-05-20T09:00:00Z',
      '2026-06-01T09:00:00Z',
      '2026-06-03T09:00:00Z',
      '2026-06-15T09:00:00Z',
    ]);
  });

  it('uses the weekday of the local start, not of UTC', () => {
    // Monday 2026-05-18 23:30 in New York is Tuesday 03:30 UTC.
    const series = expandSeries(
      firstAt('2026-05-19T03:30:00Z'),
      'America/New_York',
      weekly(2, { byWeekday: ['mon'] }),
    );
    expect(starts(series)).toEqual(['2026-05-19T03:30:00Z', '2026-05-26T03:30:00Z']);
  });

  it('monthly on the start day skips months without it (RFC 5545)', () => {
    const series = expandSeries(firstAt('2027-01-31T10:00:00Z'), 'UTC', { frequency: 'monthly', count: 4 });
    expect(starts(series)).toEqual([
      '2027-01-31T10:00:00Z',
      '2027-03-31T10:00:00Z',
      '2027-05-31T10:00:00Z',
      '2027-07-31T10:00:00Z',
    ]);
  });

  it('monthly on February 29 falls only in leap years', () => {
    const series = expandSeries(firstAt('2028-02-29T10:00:00Z'), 'UTC', {
      frequency: 'monthly',
      interval: 12,
      count: 3,
    });
    expect(starts(series)).toEqual(['2028-02-29T10:00:00Z', '2032-02-29T10:00:00Z', '2036-02-29T10:00:00Z']);
  });

  it('until includes an occurrence starting at it, and stops before the next', () => {
    const rule: RecurrenceRule = { frequency: 'daily', until: Date.parse('2026-05-20T09:00:00Z') };
    expect(starts(expandSeries(firstAt('2026-05-18T09:00:00Z'), 'UTC', rule))).toEqual([
      '2026-05-18T09:00:00Z',
      '2026-05-19T09:00:00Z',
      '2026-05-20T09:00:00Z',
    ]);
    const justBefore = { ...rule, until: Date.parse('2026-05-20T08:59:59Z') };
    expect(starts(expandSeries(firstAt('2026-05-18T09:00:00Z'), 'UTC', justBefore))).toHaveLength(2);
  });

  it('count 1 is the booking alone; count 100 is the most', () => {
    expect(starts(expandSeries(firstAt('2026-05-18T09:00:00Z'), 'UTC', weekly(1)))).toEqual([
      '2026-05-18T09:00:00Z',
    ]);
    expect(starts(expandSeries(firstAt('2026-05-18T09:00:00Z'), 'UTC', weekly(100)))).toHaveLength(100);
  });
});

describe('expandSeries: refusals name the field', () => {
  const first = firstAt('2026-05-18T09:00:00Z'); // a Monday
  const fields = (rule: RecurrenceRule, at = first) =>
    problems(expandSeries(at, 'UTC', rule)).map((problem) => problem.field);

  it('needs exactly one of count and until', () => {
    expect(fields({ frequency: 'daily' })).toEqual(['recurrence']);
    expect(fields({ frequency: 'daily', count: 2, until: Date.parse('2026-06-01T00:00:00Z') })).toEqual([
      'recurrence',
    ]);
  });

  it('bounds count, interval and the occurrences until gives', () => {
    expect(fields({ frequency: 'daily', count: 0 })).toEqual(['recurrence.count']);
    expect(fields({ frequency: 'daily', count: 101 })).toEqual(['recurrence.count']);
    expect(fields({ frequency: 'daily', count: 2.5 })).toEqual(['recurrence.count']);
    expect(fields({ frequency: 'daily', interval: 0, count: 2 })).toEqual(['recurrence.interval']);
    expect(fields({ frequency: 'daily', interval: 100, count: 2 })).toEqual(['recurrence.interval']);
    const hundred = expandSeries(first, 'UTC', { frequency: 'daily', until: first.start + 99 * 24 * HOUR });
    expect(starts(hundred)).toHaveLength(100);
    const more = problems(
      expandSeries(first, 'UTC', { frequency: 'daily', until: first.start + 100 * 24 * HOUR }),
    );
    expect(more).toEqual([{ field: 'recurrence.until', message: expect.stringContaining('more than 100') }]);
    expect(fields({ frequency: 'daily', until: first.start - 1 })).toEqual(['recurrence.until']);
  });

  it('checks by_weekday: an enum listing the days, no repeats, weekly only, with the start day', () => {
    const unknown = problems(expandSeries(first, 'UTC', weekly(2, { byWeekday: ['mon', 'monday'] })));
    expect(unknown).toEqual([
      { field: 'recurrence.by_weekday[1]', message: 'must be one of mon, tue, wed, thu, fri, sat, sun' },
    ]);
    expect(fields(weekly(2, { byWeekday: ['mon', 'tue', 'mon'] }))).toEqual(['recurrence.by_weekday[2]']);
    expect(fields({ frequency: 'daily', count: 2, byWeekday: ['mon'] })).toEqual(['recurrence.by_weekday']);
    expect(fields(weekly(2, { byWeekday: [] }))).toEqual(['recurrence.by_weekday']);
    expect(fields(weekly(2, { byWeekday: ['tue'] }))).toEqual(['recurrence.by_weekday']);
  });

  it('refuses occurrences that would overlap each other', () => {
    expect(fields({ frequency: 'daily', count: 3 }, firstAt('2026-05-18T09:00:00Z', 25))).toEqual([
      'recurrence',
    ]);
    expect(
      starts(expandSeries(firstAt('2026-05-18T09:00:00Z', 24), 'UTC', { frequency: 'daily', count: 3 })),
    ).toHaveLength(3);
  });

  it('refuses a series that cannot finish before the year 9999', () => {
    const rule: RecurrenceRule = { frequency: 'monthly', interval: 99, count: 100 };
    expect(fields(rule, firstAt('9500-02-28T10:00:00Z'))).toEqual(['recurrence.count']);
    expect(starts(expandSeries(firstAt('9000-02-28T10:00:00Z'), 'UTC', rule))).toHaveLength(100);
    expect(fields({ frequency: 'daily', count: 3 }, firstAt('9999-12-30T10:00:00Z'))).toEqual([
      'recurrence.count',
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import type { ExpandResult } from '../../src/ical/expand-object.js';
import { expandObject } from '../../src/ical/expand-object.js';
import { expandForStorage, expansionWindow } from '../../src/calendar/parsing/expand.js';

const WINDOW = { start: Date.parse('2024-01-01T00:00:00Z'), end: Date.parse('2036-01-01T00:00:00Z') };

function series(dtstart: string, ...lines: string[]): string {
  return [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//test//EN',
    'BEGIN:VEVENT',
    'UID:r',
    'DTSTAMP:20240101T000000Z',
    `DTSTART:${dtstart}`,
    ...lines,
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n');
}

function ok(result: ExpandResult) {
  if (!result.ok) throw new Error(result.error);
  return result;
}

/** Instance starts in UTC, as "YYYY-MM-DDTHH:MM". */
function starts(ics: string, window = WINDOW): string[] {
  const result = ok(expandObject(ics, window, { floatingZone: 'UTC' }));
  expect(result.truncated).toBe(false);
  return result.occurrences.map((o) => new Date(o.startsAt).toISOString().slice(0, 16));
}

describe('RFC 5545 recurrence', () => {
  it('reads BYMONTH in any order (1)', () => {
    expect(starts(series('20240201T090000Z', 'RRULE:FREQ=YEARLY;BYMONTH=11,2,5;COUNT=6'))).toEqual([
      '2024-02-01T09:00',
      '2024-05-01T09:00',
      '2024-11-01T09:00',
      '2025-02-01T09:00',
      '2025-05-01T09:00',
      '2025-11-01T09:00',
    ]);
  });

  it('skips the years without Feb 29 and the months without a 31st (2, §3.3.10 invalid dates)', () => {
    expect(starts(series('20240229T090000Z', 'RRULE:FREQ=YEARLY;COUNT=3'))).toEqual([
      '2024-02-29T09:00',
      '2028-02-29T09:00',
      '2032-02-29T09:00',
    ]);
    expect(starts(series('20240131T090000Z', 'RRULE:FREQ=MONTHLY;COUNT=7'))).toEqual([
      '2024-01-31T09:00',
      '2024-03-31T09:00',
      '2024-05-31T09:00',
      '2024-07-31T09:00',
      '2024-08-31T09:00',
      '2024-10-31T09:00',
      '2024-12-31T09:00',
    ]);
    // INTERVAL keeps its phase through the skipped month: every second month from Aug 31 is Oct, Dec, Feb...
    expect(starts(series('20240831T090000Z', 'RRULE:FREQ=MONTHLY;INTERVAL=2;COUNT=4'))).toEqual([
      '2024-08-31T09:00',
      '2024-10-31T09:00',
      '2024-12-31T09:00',
      '2025-08-31T09:00',
    ]);
  });

  it('gives the last day of each month for BYMONTHDAY=-1, daily and yearly (3)', () => {
    const started = performance.now();
    // DTSTART is the first instance even where the rule does not match it (§3.8.5.3).
    expect(starts(series('20240115T090000Z', 'RRULE:FREQ=DAILY;BYMONTHDAY=-1;COUNT=4'))).toEqual([
      '2024-01-15T09:00',
      '2024-01-31T09:00',
      '2024-02-29T09:00',
      '2024-03-31T09:00',
      '2024-04-30T09:00',
    ]);
    expect(performance.now() - started).toBeLessThan(200);
    expect(starts(series('20240229T090000Z', 'RRULE:FREQ=YEARLY;BYMONTH=2,4;BYMONTHDAY=-1;COUNT=4'))).toEqual(
      ['2024-02-29T09:00', '2024-04-30T09:00', '2025-02-28T09:00', '2025-04-30T09:00'],
    );
  });

  it('gives COUNT instances for MONTHLY with BYMONTH (4)', () => {
    expect(starts(series('20240301T090000Z', 'RRULE:FREQ=MONTHLY;BYMONTH=3,6;COUNT=3'))).toEqual([
      '2024-03-01T09:00',
      '2024-06-01T09:00',
      '2025-03-01T09:00',
    ]);
    expect(starts(series('20240315T090000Z', 'RRULE:FREQ=MONTHLY;BYMONTH=9,3;BYDAY=-1FR;COUNT=4'))).toEqual([
      '2024-03-15T09:00',
      '2024-03-29T09:00',
      '2024-09-27T09:00',
      '2025-03-28T09:00',
      '2025-09-26T09:00',
    ]);
  });

  it('leaves nothing of a single event whose DTSTART its own EXDATE removes (5, §3.8.5.1)', () => {
    const ics = series('20260520T090000Z', 'DTEND:20260520T100000Z', 'EXDATE:20260520T090000Z');
    expect(
      starts(ics, { start: Date.parse('2026-01-01T00:00:00Z'), end: Date.parse('2027-01-01T00:00:00Z') }),
    ).toEqual([]);
    // Stored as a recurrence set, so no fallback to the master makes it busy.
    const stored = ok(expandForStorage(ics, expansionWindow(Date.parse('2020-01-01T00:00:00Z')), 'UTC'));
    expect(stored.summary.recurring).toBe(true);
    expect(stored.occurrences).toEqual([]);
    // The same event without the EXDATE is stored at its time wherever it is.
    const kept = ok(
      expandForStorage(series('20260520T090000Z', 'DTEND:20260520T100000Z'), expansionWindow(0), 'UTC'),
    );
    expect(kept.occurrences.map((o) => o.startsAt)).toEqual([Date.parse('2026-05-20T09:00:00Z')]);
  });

  describe('RSCALE (6, RFC 7529)', () => {
    it('reads RSCALE=GREGORIAN with the default SKIP=OMIT as plain RFC 5545', () => {
      for (const rule of [
        'RSCALE=GREGORIAN;FREQ=YEARLY;COUNT=3',
        'RSCALE=GREGORIAN;FREQ=YEARLY;SKIP=OMIT;COUNT=3',
      ]) {
        expect(starts(series('20240229T120000Z', `RRULE:${rule}`)), rule).toEqual([
          '2024-02-29T12:00',
          '2028-02-29T12:00',
          '2032-02-29T12:00',
        ]);
      }
    });

    it('moves invalid dates back or forward with SKIP=BACKWARD or FORWARD', () => {
      const rule = (skip: string) => `RRULE:RSCALE=GREGORIAN;FREQ=YEARLY;SKIP=${skip};COUNT=3`;
      expect(starts(series('20240229T120000Z', rule('BACKWARD')))).toEqual([
        '2024-02-29T12:00',
        '2025-02-28T12:00',
        '2026-02-28T12:00',
      ]);
      expect(starts(series('20240229T120000Z', rule('FORWARD')))).toEqual([
        '2024-02-29T12:00',
        '2025-03-01T12:00',
        '2026-03-01T12:00',
      ]);
    });

    it('refuses a non-Gregorian RSCALE with a warning rather than reading it as Gregorian', () => {
      const ics = series('20130210T000000Z', 'RRULE:RSCALE=CHINESE;FREQ=YEARLY;COUNT=4');
      const result = ok(expandObject(ics, WINDOW, { floatingZone: 'UTC' }));
      expect(result.occurrences).toEqual([]);
      expect(result.warnings?.join('\n')).toMatch(/RSCALE=CHINESE.*not supported/);
    });
  });
});

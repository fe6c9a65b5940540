import { describe, expect, it } from 'vitest';
import { expandObject } from '../../src/ical/expand-object.js';
import { SPAN_MAX_COUNT } from '../../src/ical/series-span.js';
import { mulberry32 } from './support.js';

/**
 * A series' span must hold every occurrence the expander finds, in any window: checked against the
 * expansion of the whole timeline, on series with overrides, RDATEs, durations, DST and all-day days.
 */

const WHOLE = { start: Date.UTC(1950, 0, 1), end: Date.UTC(2150, 0, 1) };

function calendar(...events: string[][]): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', ...events.flat(), 'END:VCALENDAR', ''].join('\r\n');
}

function vevent(...lines: string[]): string[] {
  return ['BEGIN:VEVENT', 'UID:s', 'DTSTAMP:20260101T000000Z', ...lines, 'END:VEVENT'];
}

function spanAndWhole(ics: string) {
  const stored = expandObject(
    ics,
    { start: Date.UTC(2026, 4, 1), end: Date.UTC(2027, 5, 1) },
    {
      floatingZone: 'Europe/Berlin',
    },
  );
  const whole = expandObject(ics, WHOLE, {
    floatingZone: 'Europe/Berlin',
    maxOccurrences: 100_000,
    timeBudgetMs: 10_000,
    span: false,
  });
  if (!stored.ok || !whole.ok) throw new Error('the series did not expand');
  expect(whole.truncated).toBe(false);
  expect(whole.span).toBeUndefined();
  return { span: stored.span!, occurrences: whole.occurrences };
}

/** The span of the series made of `events`, checked to hold every occurrence of the whole timeline. */
function expectCovered(...events: string[][]): { from: number | null; until: number | null } {
  const { span, occurrences } = spanAndWhole(calendar(...events));
  expect(occurrences.length).toBeGreaterThan(0);
  for (const occurrence of occurrences) {
    if (span.from !== null) expect(occurrence.startsAt).toBeGreaterThanOrEqual(span.from);
    if (span.until !== null) expect(occurrence.endsAt).toBeLessThanOrEqual(span.until);
  }
  return span;
}

const BERLIN = 'TZID=Europe/Berlin';

describe('series spans', () => {
  it('an UNTIL series ends at its last occurrence, an RDATE or an override past it moves the end', () => {
    const daily = 'RRULE:FREQ=DAILY;UNTIL=20260601T000000Z';
    const until = expectCovered(vevent(`DTSTART;${BERLIN}:20260329T013000`, 'DURATION:P1DT2H', daily));
    expect(until.until).toBeLessThan(Date.UTC(2026, 5, 6));
    const periods = 'RDATE;VALUE=PERIOD:20310101T000000Z/P3D,20100101T000000Z/20100102T000000Z';
    const rdate = expectCovered(vevent('DTSTART:20260520T080000Z', 'DTEND:20260520T090000Z', daily, periods));
    expect(rdate.from).toBeLessThanOrEqual(Date.UTC(2010, 0, 1));
    expect(rdate.until).toBeGreaterThanOrEqual(Date.UTC(2031, 0, 4));
    const moved = ['DTSTART;VALUE=DATE:20330101', 'DTEND;VALUE=DATE:20330110'];
    const allDay = expectCovered(
      vevent('DTSTART;VALUE=DATE:20260520', 'RRULE:FREQ=WEEKLY;COUNT=3'),
      vevent('RECURRENCE-ID;VALUE=DATE:20260527', ...moved),
    );
    expect(allDay.until).toBeGreaterThanOrEqual(Date.UTC(2033, 0, 10));
  });

  it('a COUNT series is walked to its end; one past the bound, or without end, is unbounded', () => {
    const monthly = 'RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=40';
    const counted = expectCovered(
      vevent(`DTSTART;${BERLIN}:20260520T090000`, `DTEND;${BERLIN}:20260520T100000`, monthly),
    );
    expect(counted.until).not.toBeNull();
    expect(counted.until!).toBeLessThan(Date.UTC(2029, 11, 31));
    const long = expectCovered(
      vevent('DTSTART:20260520T090000Z', `RRULE:FREQ=DAILY;COUNT=${SPAN_MAX_COUNT + 1}`),
    );
    expect(long.until).toBeNull();
    const forever = spanAndWhole(calendar(vevent('DTSTART:20260520T090000Z', 'RRULE:FREQ=YEARLY'))).span;
    expect(forever.until).toBeNull();
    expect(forever.from).toBeLessThanOrEqual(Date.UTC(2026, 4, 20, 9));
  });

  it('holds every occurrence of generated series', () => {
    const random = mulberry32(20261204);
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
    for (let index = 0; index < 60; index++) {
      const day = 1 + Math.floor(random() * 28);
      const start = `202605${String(day).padStart(2, '0')}T${pick(['000000', '013000', '233000'])}`;
      const zone = pick([`;${BERLIN}`, ';TZID=America/New_York', '']);
      const stop = pick([';COUNT=7', ';COUNT=300', ';UNTIL=20280101T000000Z', ';UNTIL=20270315']);
      const rule = `RRULE:FREQ=${pick(['DAILY', 'WEEKLY', 'MONTHLY'])};INTERVAL=${1 + Math.floor(random() * 3)}${stop}`;
      const length = pick(['DURATION:PT45M', 'DURATION:P1D', 'DURATION:P2DT3H', 'DURATION:PT0S']);
      const events = [vevent(`DTSTART${zone}:${start}`, length, rule, `RDATE${zone}:2029${start.slice(4)}`)];
      if (random() < 0.5) {
        events.push(
          vevent(`RECURRENCE-ID${zone}:${start}`, `DTSTART${zone}:2019${start.slice(4)}`, 'DURATION:PT2H'),
        );
      }
      expectCovered(...events);
    }
  });
});

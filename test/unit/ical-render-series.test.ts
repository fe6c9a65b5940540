import { describe, expect, it } from 'vitest';
import { expandObject } from '../../src/ical/expand-object.js';
import {
  type OutgoingOccurrence,
  type OutgoingSeries,
  recurValue,
  seriesRange,
  seriesVevents,
  vtimezone,
} from '../../src/ical/render-series.js';
import { vcalendar, writeComponent } from '../../src/ical/write.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function occurrence(startIso: string, extra: Partial<OutgoingOccurrence> = {}): OutgoingOccurrence {
  const start = Date.parse(startIso);
  return {
    bookingId: `b-${startIso}`,
    recurrenceId: start,
    startsAt: start,
    endsAt: start + HOUR,
    title: 'Review',
    description: null,
    status: 'confirmed',
    updatedAt: Date.parse('2026-10-01T00:00:00Z'),
    ...extra,
  };
}

function series(
  occurrences: OutgoingOccurrence[],
  rule: Partial<OutgoingSeries['rule']> = {},
): OutgoingSeries {
  return {
    uid: 's1@sched',
    seriesId: 's1',
    timeZone: 'Europe/Berlin',
    rule: {
      frequency: 'daily',
      interval: 1,
      count: occurrences.length,
      until: null,
      byWeekday: null,
      ...rule,
    },
    occurrences,
  };
}

function render(one: OutgoingSeries): string {
  return writeComponent(
    vcalendar('-//test//EN', [vtimezone(one.timeZone, seriesRange(one)), ...seriesVevents(one)]),
  );
}

function starts(ics: string): string[] {
  const result = expandObject(
    ics,
    { start: Date.parse('2026-01-01T00:00:00Z'), end: Date.parse('2028-01-01T00:00:00Z') },
    { floatingZone: 'UTC' },
  );
  if (!result.ok) throw new Error(result.error);
  return result.occurrences
    .filter((o) => o.status !== 'cancelled')
    .map((o) => new Date(o.startsAt).toISOString())
    .sort();
}

describe('a recurring booking as one iCalendar event', () => {
  it('writes the rule in RFC 5545 form', () => {
    expect(
      recurValue({ frequency: 'weekly', interval: 2, count: 5, until: null, byWeekday: ['mon', 'fri'] }),
    ).toBe('FREQ=WEEKLY;INTERVAL=2;COUNT=5;BYDAY=MO,FR;WKST=MO');
    expect(
      recurValue({
        frequency: 'monthly',
        interval: 1,
        count: null,
        until: Date.parse('2027-03-31T08:00:00Z'),
        byWeekday: null,
      }),
    ).toBe('FREQ=MONTHLY;UNTIL=20270331T080000Z');
  });

  it('expands back to the occurrences across the Berlin change of 2026-10-25', () => {
    const all = [
      '2026-10-23T07:00:00Z',
      '2026-10-24T07:00:00Z',
      '2026-10-25T08:00:00Z',
      '2026-10-26T08:00:00Z',
    ];
    const ics = render(series(all.map((start) => occurrence(start))));
    expect(ics).toContain('DTSTART;TZID=Europe/Berlin:20261023T090000\r\n');
    expect(ics).not.toContain('RECURRENCE-ID');
    expect(starts(ics)).toEqual(all.map((start) => new Date(start).toISOString()));
  });

  it('a moved first occurrence is an override; a cancelled one an EXDATE', () => {
    const first = occurrence('2026-10-23T07:00:00Z', { startsAt: Date.parse('2026-10-23T12:00:00Z') });
    first.endsAt = first.startsAt + HOUR;
    const second = occurrence('2026-10-24T07:00:00Z', { status: 'cancelled' });
    const third = occurrence('2026-10-25T08:00:00Z');
    const ics = render(series([third, first, second]));
    expect(ics).toContain('RECURRENCE-ID;TZID=Europe/Berlin:20261023T090000\r\n');
    expect(ics).toContain('EXDATE;TZID=Europe/Berlin:20261024T090000\r\n');
    expect(starts(ics)).toEqual(['2026-10-23T12:00:00.000Z', '2026-10-25T08:00:00.000Z']);
  });

  it('a series with no live occurrence is one cancelled event', () => {
    const gone = [0, 1].map((i) =>
      occurrence(new Date(Date.parse('2026-10-23T07:00:00Z') + i * DAY).toISOString(), {
        status: 'cancelled',
      }),
    );
    const events = seriesVevents(series(gone));
    expect(events).toHaveLength(1);
    const ics = render(series(gone));
    expect(ics).toContain('STATUS:CANCELLED');
    expect(ics).not.toContain('RRULE');
  });

  it('the VTIMEZONE holds the offsets in force over the span', () => {
    const text = writeComponent(
      vtimezone('America/New_York', {
        start: Date.parse('2026-10-20T13:00:00Z'),
        end: Date.parse('2027-04-01T00:00:00Z'),
      }),
    );
    expect(text).toContain(
      'BEGIN:DAYLIGHT\r\nDTSTART:20261019T090000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0400',
    );
    expect(text).toContain(
      'BEGIN:STANDARD\r\nDTSTART:20261101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500',
    );
    expect(text).toContain(
      'BEGIN:DAYLIGHT\r\nDTSTART:20270314T020000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400',
    );
  });
});

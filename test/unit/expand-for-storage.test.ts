import { describe, expect, it } from 'vitest';
import { expandForStorage, expansionWindow } from '../../src/calendar/parsing/expand.js';

function calendar(lines: string[]): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//t//t//EN', ...lines, 'END:VCALENDAR', ''].join('\r\n');
}

const window = expansionWindow(Date.parse('2026-05-18T06:00:00Z'));

describe('expandForStorage', () => {
  it('stores a single event long before the window at its own time, with its transparency', () => {
    const result = expandForStorage(
      calendar([
        'BEGIN:VEVENT',
        'UID:old',
        'DTSTAMP:20200101T000000Z',
        'DTSTART;TZID=Europe/Berlin:20200302T090000',
        'DTEND;TZID=Europe/Berlin:20200302T100000',
        'SUMMARY:Old',
        'TRANSP:TRANSPARENT',
        'END:VEVENT',
      ]),
      window,
      'UTC',
    );
    expect(result.ok && result.occurrences).toEqual([
      {
        startsAt: Date.parse('2020-03-02T08:00:00Z'),
        endsAt: Date.parse('2020-03-02T09:00:00Z'),
        allDay: false,
        title: 'Old',
        status: 'confirmed',
        transparency: 'transparent',
        recurrenceId: null,
      },
    ]);
  });

  it('stores a recurring series only within the window', () => {
    const result = expandForStorage(
      calendar([
        'BEGIN:VEVENT',
        'UID:series',
        'DTSTAMP:20200101T000000Z',
        'DTSTART:20200302T090000Z',
        'DTEND:20200302T100000Z',
        'RRULE:FREQ=WEEKLY;COUNT=3',
        'END:VEVENT',
      ]),
      window,
      'UTC',
    );
    expect(result.ok && result.summary.recurring).toBe(true);
    expect(result.ok && result.occurrences).toEqual([]);
  });
});

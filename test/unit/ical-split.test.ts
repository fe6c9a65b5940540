import { describe, expect, it } from 'vitest';
import { expandObject } from '../../src/ical/expand-object.js';
import type { SplitResult } from '../../src/ical/split-calendar.js';
import { ICS_MAX_BYTES, splitCalendar } from '../../src/ical/split-calendar.js';

const YEAR_2026 = { start: Date.parse('2026-01-01T00:00:00Z'), end: Date.parse('2027-01-01T00:00:00Z') };

function calendar(...lines: string[]): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//test//EN', ...lines, 'END:VCALENDAR', ''].join('\r\n');
}

function event(...lines: string[]): string[] {
  return ['BEGIN:VEVENT', 'DTSTAMP:20260101T000000Z', ...lines, 'END:VEVENT'];
}

function parts(result: SplitResult) {
  if (!result.ok) throw new Error(result.error);
  return result;
}

const BERLIN_TZ = [
  'BEGIN:VTIMEZONE',
  'TZID:Europe/Berlin',
  'BEGIN:STANDARD',
  'DTSTART:19701025T030000',
  'TZOFFSETFROM:+0200',
  'TZOFFSETTO:+0100',
  'RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU',
  'END:STANDARD',
  'END:VTIMEZONE',
];
const OTHER_TZ = [
  'BEGIN:VTIMEZONE',
  'TZID:Unused/Zone',
  'BEGIN:STANDARD',
  'DTSTART:19700101T000000',
  'TZOFFSETFROM:+0000',
  'TZOFFSETTO:+0000',
  'END:STANDARD',
  'END:VTIMEZONE',
];

describe('splitCalendar', () => {
  it('groups a master and its overrides, whatever their order, into one part', () => {
    const text = calendar(
      ...event('UID:series', 'RECURRENCE-ID:20260602T100000Z', 'DTSTART:20260602T150000Z', 'SUMMARY:Moved'),
      ...event('UID:single', 'DTSTART:20260610T100000Z'),
      ...event('UID:series', 'DTSTART:20260601T100000Z', 'DURATION:PT1H', 'RRULE:FREQ=DAILY;COUNT=3'),
      ...event(
        'UID:series',
        'RECURRENCE-ID:20260603T100000Z',
        'DTSTART:20260603T100000Z',
        'STATUS:CANCELLED',
      ),
    );
    const result = parts(splitCalendar(text));
    expect(result.parts.map((p) => p.uid)).toEqual(['series', 'single']);
    const series = result.parts[0]!.ics;
    expect(series.match(/BEGIN:VEVENT/g)).toHaveLength(3);
    expect(series).toMatch(/^BEGIN:VCALENDAR\r\n/);
    expect(series.endsWith('END:VCALENDAR\r\n')).toBe(true);
    const expanded = expandObject(series, YEAR_2026, { floatingZone: 'UTC' });
    if (!expanded.ok) throw new Error(expanded.error);
    expect(expanded.occurrences.map((o) => [o.title, o.status])).toEqual([
      [null, 'confirmed'],
      ['Moved', 'confirmed'],
      [null, 'cancelled'],
    ]);
  });

  it('reads several VCALENDARs in one text and strips a UTF-8 BOM', () => {
    const text =
      '\uFEFF' +
      calendar(...event('UID:a', 'DTSTART:20260601T100000Z')) +
      calendar(...event('UID:b', 'DTSTART:20260602T100000Z'));
    expect(parts(splitCalendar(text)).parts.map((p) => p.uid)).toEqual(['a', 'b']);
  });

  it('carries the VTIMEZONEs a part uses, and X-WR-TIMEZONE, and nothing else', () => {
    const text = calendar(
      'X-WR-TIMEZONE:America/New_York',
      'METHOD:PUBLISH',
      ...BERLIN_TZ,
      ...OTHER_TZ,
      ...event('UID:tz', 'DTSTART;TZID=Europe/Berlin:20260105T090000'),
      ...event('UID:float', 'DTSTART:20260105T090000'),
    );
    const [tz, float] = parts(splitCalendar(text)).parts;
    expect(tz!.ics).toContain('TZID:Europe/Berlin');
    expect(tz!.ics).not.toContain('Unused/Zone');
    expect(tz!.ics).not.toContain('METHOD');
    expect(float!.ics).not.toContain('BEGIN:VTIMEZONE');
    expect(float!.ics).toContain('X-WR-TIMEZONE:America/New_York');
    const expanded = expandObject(float!.ics, YEAR_2026, { floatingZone: 'Europe/Berlin' });
    expect(expanded.ok && expanded.occurrences[0]!.startsAt).toBe(Date.parse('2026-01-05T14:00:00Z'));
  });

  it('gives VEVENTs without UID a stable UID derived from their content', () => {
    const text = calendar(
      ...event('DTSTART:20260601T100000Z', 'SUMMARY:One'),
      ...event('DTSTART:20260601T100000Z', 'SUMMARY:Two'),
    );
    const first = parts(splitCalendar(text)).parts;
    const second = parts(splitCalendar(text)).parts;
    expect(first).toHaveLength(2);
    expect(first.map((p) => p.uid)).toEqual(second.map((p) => p.uid));
    expect(first[0]!.uid).not.toBe(first[1]!.uid);
    expect(first[0]!.ics).toContain(`UID:${first[0]!.uid}`);
  });

  it('ignores other components with a warning, and keeps the newest of duplicate masters', () => {
    const text = calendar(
      'BEGIN:VTODO',
      'UID:todo',
      'END:VTODO',
      ...event('UID:d', 'SEQUENCE:1', 'DTSTART:20260601T100000Z', 'SUMMARY:Old'),
      ...event('UID:d', 'SEQUENCE:2', 'DTSTART:20260601T100000Z', 'SUMMARY:New'),
    );
    const result = parts(splitCalendar(text));
    expect(result.warnings).toContain('ignored 1 VTODO component');
    expect(result.warnings.some((w) => w.includes('duplicate master'))).toBe(true);
    expect(result.parts[0]!.ics).toContain('SUMMARY:New');
    expect(result.parts[0]!.ics).not.toContain('SUMMARY:Old');
  });

  it('writes a bare DATE (no VALUE=DATE) back as a DATE', () => {
    const result = parts(splitCalendar(calendar(...event('UID:bare', 'DTSTART:20260601'))));
    expect(result.parts[0]!.ics).toContain('DTSTART;VALUE=DATE:20260601');
  });

  it('refuses oversize input before parsing', () => {
    const result = splitCalendar('not even iCalendar '.repeat(100), { maxBytes: 1000 });
    expect(result).toEqual({ ok: false, error: 'input is larger than the limit of 1000 bytes' });
    expect(ICS_MAX_BYTES).toBe(10 * 1024 * 1024);
    const multibyte = splitCalendar('é'.repeat(600), { maxBytes: 1000 });
    expect(!multibyte.ok && multibyte.error).toMatch(/larger than/);
  });

  it('refuses a calendar of one event that does not parse, keeping the event as written to name it', () => {
    const text = [
      'BEGIN:VCALENDAR',
      'VERSION:2.0',
      'BEGIN:VEVENT',
      'UID:x',
      'this is not a property',
      'END:VEVENT',
      'END:VCALENDAR',
    ].join('\r\n');
    const result = splitCalendar(text);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(/^line 5: invalid line/);
    const unreadable = result.unreadable ?? [];
    expect(unreadable.map((p) => p.uid)).toEqual(['x']);
    const read = expandObject(unreadable[0]!.ics, YEAR_2026, { floatingZone: 'UTC' });
    expect(!read.ok && read.error).toMatch(/invalid line/);
  });

  it('refuses input that holds no calendar at all, without throwing', () => {
    expect(splitCalendar('')).toMatchObject({ ok: false });
    expect(splitCalendar('hello')).toMatchObject({ ok: false });
  });

  it('keeps the good VEVENTs of a calendar where one is broken, naming the broken one', () => {
    const text = calendar(
      ...event('UID:good', 'DTSTART:20260601T100000Z'),
      ...event('UID:bad', 'DTSTART:20260601T100000Z', 'RRULE:FREQ=NEVER'),
    );
    const result = parts(splitCalendar(text));
    expect(result.parts.map((p) => p.uid)).toEqual(['good']);
    // The broken one is kept as written, for a sync to report.
    expect(result.unreadable.map((p) => p.uid)).toEqual(['bad']);
    expect(result.unreadable[0]!.ics).toContain('RRULE:FREQ=NEVER');
    expect(result.warnings.some((w) => /^line 9: VEVENT dropped: invalid frequency/.test(w))).toBe(true);
  });

  it('reads rules with spaces around separators and in lowercase as meant', () => {
    const text = calendar(
      ...event('UID:r', 'DTSTART:20260601T100000Z', 'RRULE:freq=weekly; byday=MO, TU;count=3'),
    );
    const result = parts(splitCalendar(text));
    expect(result.warnings).toEqual([]);
    const read = expandObject(result.parts[0]!.ics, YEAR_2026, { floatingZone: 'UTC' });
    expect(read.ok && read.occurrences.map((o) => new Date(o.startsAt).toISOString())).toEqual([
      '2026-06-01T10:00:00.000Z',
      '2026-06-02T10:00:00.000Z',
      '2026-06-08T10:00:00.000Z',
    ]);
  });
});

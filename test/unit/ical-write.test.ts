import ICAL from 'ical.js';
import { describe, expect, it } from 'vitest';
import { renderGroup } from '../../src/calendar/providers/google/google-render.js';
import { renderGraphEvent } from '../../src/calendar/providers/outlook/map-outlook-event.js';
import { renderBookingEvent, renderFeed } from '../../src/ical/render-event.js';
import { bookings, googleGroups, graphEvents } from './ical-fixtures.js';
import {
  type Component,
  contentLine,
  date,
  dates,
  escapeText,
  floating,
  foldLine,
  IcalWriteError,
  mailto,
  parseContentLine,
  type Property,
  raw,
  text,
  utc,
  vcalendar,
  writeComponent,
  zoned,
} from '../../src/ical/write.js';

type JCal = [string, Record<string, unknown>, string, ...unknown[]];

/** A VCALENDAR holding one VEVENT with the given properties, written and parsed back by ical.js. */
function roundTrip(properties: Property[]): ICAL.Component {
  const event: Component = { name: 'VEVENT', properties: [text('UID', 'x@test'), ...properties] };
  const written = writeComponent(vcalendar('-//Test//EN', [event]));
  return new ICAL.Component(ICAL.parse(written)).getFirstSubcomponent('vevent')!;
}

function jcal(component: ICAL.Component, name: string): JCal[] {
  return component.getAllProperties(name).map((p) => p.toJSON() as JCal);
}

function physicalLines(written: string): string[] {
  expect(written.endsWith('\r\n')).toBe(true);
  expect(written.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  return written.slice(0, -2).split('\r\n');
}

function expectFolded(written: string): void {
  for (const line of physicalLines(written)) {
    expect(Buffer.byteLength(line, 'utf8')).toBeLessThanOrEqual(75);
    // Every physical line is valid UTF-8 on its own: no sequence is cut by a fold.
    expect(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(line, 'utf8'))).toBe(line);
  }
}

describe('TEXT escaping (RFC 5545 §3.3.11)', () => {
  it.each([
    ['back\\slash', 'back\\\\slash'],
    ['semi;colon', 'semi\\;colon'],
    ['com,ma', 'com\\,ma'],
    ['line\nbreak', 'line\\nbreak'],
    ['crlf\r\nand\rcr', 'crlf\\nand\\ncr'],
    ['all \\;,\n', 'all \\\\\\;\\,\\n'],
  ])('escapes %j and ical.js reads it back unchanged', (value, escaped) => {
    expect(escapeText(value)).toBe(escaped);
    expect(contentLine(text('SUMMARY', value))).toBe(`SUMMARY:${escaped}`);
    // A bare CR is read back as a newline: the one change escaping makes.
    const expected = value.replace(/\r\n|\r/g, '\n');
    expect(roundTrip([text('SUMMARY', value)]).getFirstPropertyValue('summary')).toBe(expected);
  });

  it('escapes each value of a multi-valued TEXT property on its own', () => {
    const property: Property = {
      name: 'CATEGORIES',
      values: [{ text: 'a,b' }, { text: 'c;d' }, { text: 'e' }],
    };
    expect(contentLine(property)).toBe('CATEGORIES:a\\,b,c\\;d,e');
    expect(roundTrip([property]).getFirstProperty('categories')!.getValues()).toEqual(['a,b', 'c;d', 'e']);
  });

  it('keeps CR and LF out of raw values and parameter values, and quotes parameters with separators', () => {
    const attendee = mailto('ATTENDEE', 'ana@example.com\r\nX-INJECTED:1', { CN: 'Lopez, "Ana"\r\n' });
    expect(contentLine(attendee)).toBe('ATTENDEE;CN="Lopez, Ana":mailto:ana@example.comX-INJECTED:1');
    const member = raw('ATTENDEE', 'mailto:bo@example.com', { MEMBER: ['mailto:a@x', 'mailto:b@x'] });
    expect(contentLine(member)).toBe('ATTENDEE;MEMBER="mailto:a@x","mailto:b@x":mailto:bo@example.com');
    const event = roundTrip([attendee, member]);
    expect(event.getAllProperties('x-injected')).toHaveLength(0);
    expect(event.getAllProperties('attendee')[0]!.getParameter('cn')).toBe('Lopez, Ana');
    expect(event.getAllProperties('attendee')[1]!.getParameter('member')).toEqual([
      'mailto:a@x',
      'mailto:b@x',
    ]);
  });

  it('refuses names that would break the line', () => {
    expect(() => contentLine(text('SUM:MARY', 'x'))).toThrow(IcalWriteError);
    expect(() => contentLine(text('SUMMARY', 'x', { 'X;Y': 'z' }))).toThrow(IcalWriteError);
    expect(() => writeComponent({ name: 'V EVENT', properties: [] })).toThrow(IcalWriteError);
  });
});

describe('folding (RFC 5545 §3.1)', () => {
  it('leaves a 75-octet line alone and folds a 76-octet one', () => {
    const exact = `X:${'a'.repeat(73)}`;
    expect(foldLine(exact)).toBe(exact);
    expect(foldLine(`${exact}b`)).toBe(`${exact}\r\n b`);
  });

  it('folds long ASCII lines at 75 octets, then 74 after the leading space', () => {
    const folded = foldLine(`X:${'a'.repeat(200)}`).split('\r\n');
    expect(folded.map((line) => line.length)).toEqual([75, 75, 54]);
    expect(folded.slice(1).every((line) => line.startsWith(' '))).toBe(true);
    expect(folded.join('').replace(/ /g, '')).toBe(`X:${'a'.repeat(200)}`);
  });

  it.each([
    ['accents and dashes', 'Réunion — café '.repeat(10)],
    ['CJK', '会議室の予約'.repeat(20)],
    ['emoji with selectors and joiners', '🗓️👩‍💻 '.repeat(20)],
    ['a 4-octet character right at the fold', `${'a'.repeat(64)}😀${'b'.repeat(10)}`],
  ])('folds %s between code points and ical.js reads the value back whole', (_, value) => {
    const written = writeComponent(
      vcalendar('-//Test//EN', [{ name: 'VEVENT', properties: [text('SUMMARY', value)] }]),
    );
    expectFolded(written);
    expect(physicalLines(written).length).toBeGreaterThan(5);
    const event = new ICAL.Component(ICAL.parse(written)).getFirstSubcomponent('vevent')!;
    expect(event.getFirstPropertyValue('summary')).toBe(value);
  });
});

describe('DATE and DATE-TIME values', () => {
  const instant = Date.parse('2026-01-05T08:00:00.999Z');

  it('writes UTC with Z, dropping milliseconds', () => {
    expect(contentLine(dates('DTSTART', utc(instant)))).toBe('DTSTART:20260105T080000Z');
    expect(jcal(roundTrip([dates('DTSTART', utc(instant))]), 'dtstart')).toEqual([
      ['dtstart', {}, 'date-time', '2026-01-05T08:00:00Z'],
    ]);
  });

  it('writes a DATE with VALUE=DATE', () => {
    expect(contentLine(dates('DTSTART', date('2026-02-28')))).toBe('DTSTART;VALUE=DATE:20260228');
    expect(jcal(roundTrip([dates('DTSTART', date('2026-02-28'))]), 'dtstart')).toEqual([
      ['dtstart', {}, 'date', '2026-02-28'],
    ]);
  });

  it('writes a floating time with neither Z nor TZID', () => {
    expect(contentLine(dates('DTSTART', floating('2026-01-05T09:30:00')))).toBe('DTSTART:20260105T093000');
    expect(jcal(roundTrip([dates('DTSTART', floating('2026-01-05T09:30:00'))]), 'dtstart')).toEqual([
      ['dtstart', {}, 'date-time', '2026-01-05T09:30:00'],
    ]);
  });

  it('writes a zoned time with TZID', () => {
    const property = dates('DTSTART', zoned('America/New_York', '2026-03-08T02:30:00'));
    expect(contentLine(property)).toBe('DTSTART;TZID=America/New_York:20260308T023000');
    expect(jcal(roundTrip([property]), 'dtstart')).toEqual([
      ['dtstart', { tzid: 'America/New_York' }, 'date-time', '2026-03-08T02:30:00'],
    ]);
  });

  it('writes several values of one form once, and refuses mixed forms and zones', () => {
    const exdate = dates(
      'EXDATE',
      zoned('Europe/Berlin', '2026-01-07T09:00:00'),
      zoned('Europe/Berlin', '2026-01-14T09:00:00'),
    );
    expect(contentLine(exdate)).toBe('EXDATE;TZID=Europe/Berlin:20260107T090000,20260114T090000');
    expect(jcal(roundTrip([exdate]), 'exdate')).toEqual([
      ['exdate', { tzid: 'Europe/Berlin' }, 'date-time', '2026-01-07T09:00:00', '2026-01-14T09:00:00'],
    ]);
    expect(contentLine(dates('EXDATE', date('2026-01-07'), date('2026-01-08')))).toBe(
      'EXDATE;VALUE=DATE:20260107,20260108',
    );
    expect(() => contentLine(dates('EXDATE', utc(instant), date('2026-01-07')))).toThrow(IcalWriteError);
    expect(() =>
      contentLine(
        dates('EXDATE', zoned('Europe/Berlin', '2026-01-07T09:00:00'), zoned('UTC', '2026-01-07T09:00:00')),
      ),
    ).toThrow(IcalWriteError);
    expect(() => contentLine({ name: 'RDATE', values: [{ date: utc(instant) }, { raw: 'x' }] })).toThrow(
      IcalWriteError,
    );
  });

  it('refuses values that are not dates or times', () => {
    expect(() => contentLine(dates('DTSTART', date('2026-1-5')))).toThrow(IcalWriteError);
    expect(() => contentLine(dates('DTSTART', floating('2026-01-05 09:00')))).toThrow(IcalWriteError);
    expect(() => contentLine(dates('DTSTART', utc(Number.NaN)))).toThrow(IcalWriteError);
  });
});

describe('content lines given whole', () => {
  it('reads name, parameters and value, unquoting parameter values', () => {
    expect(parseContentLine('RRULE:FREQ=WEEKLY;BYDAY=MO,WE')).toEqual({
      name: 'RRULE',
      values: [{ raw: 'FREQ=WEEKLY;BYDAY=MO,WE' }],
    });
    expect(
      parseContentLine('exdate;tzid="Europe/Berlin";VALUE=DATE-TIME:20260107T090000,20260114T090000'),
    ).toEqual({
      name: 'EXDATE',
      params: { TZID: ['Europe/Berlin'], VALUE: ['DATE-TIME'] },
      values: [{ raw: '20260107T090000,20260114T090000' }],
    });
    expect(parseContentLine('X-A;P="a:b;c",d:v')).toEqual({
      name: 'X-A',
      params: { P: ['a:b;c', 'd'] },
      values: [{ raw: 'v' }],
    });
    for (const broken of ['RRULE', 'RRULE;FREQ', ':x', 'A B:x', 'A;=x:y'])
      expect(parseContentLine(broken)).toBeNull();
  });
});

/**
 * The text each caller wrote before it was built on the writer, for these fixtures; what ical.js reads
 * from the writer's output must be the same, property for property.
 */
const BEFORE: Record<string, string[]> = {
  'booking.plain': [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Sched//Sched//EN',
    'CALSCALE:GREGORIAN',
    'BEGIN:VEVENT',
    'UID:b0000000-0000-4000-8000-000000000001@sched',
    'DTSTAMP:20260301T123456Z',
    'LAST-MODIFIED:20260301T123456Z',
    'DTSTART:20260330T070000Z',
    'DTEND:20260330T083000Z',
    'SEQUENCE:3',
    'SUMMARY:Room A\\; team sync\\, weekly',
    'DESCRIPTION:Line one\\nLine two with a back\\\\slash',
    'STATUS:CONFIRMED',
    'TRANSP:OPAQUE',
    'ATTENDEE;CN="Ana, Lopez":mailto:ana@example.com',
    'ATTENDEE:mailto:bo@example.com',
    'X-SCHED-BOOKING-ID:b0000000-0000-4000-8000-000000000001',
    'END:VEVENT',
    'END:VCALENDAR',
  ],
  'booking.cancelled': [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Sched//Sched//EN',
    'CALSCALE:GREGORIAN',
    'BEGIN:VEVENT',
    'UID:b0000000-0000-4000-8000-000000000002@sched',
    'DTSTAMP:20260630T000000Z',
    'LAST-MODIFIED:20260630T000000Z',
    'DTSTART:20260701T221500Z',
    'DTEND:20260701T230000Z',
    'SEQUENCE:5',
    'SUMMARY:Réunion — 会議室 🗓️ Réunion — 会議室 🗓️ Réun',
    ' ion — 会議室 🗓️ Réunion — 会議室 🗓️ Réunion — 会',
    ' 議室 🗓️ ',
    'STATUS:CANCELLED',
    'TRANSP:OPAQUE',
    'X-SCHED-BOOKING-ID:b0000000-0000-4000-8000-000000000002',
    'END:VEVENT',
    'END:VCALENDAR',
  ],
  'google.series': [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Sched//Google Calendar adapter//EN',
    'CALSCALE:GREGORIAN',
    'BEGIN:VEVENT',
    'UID:series1@google.com',
    'DTSTAMP:20260102T110000Z',
    'LAST-MODIFIED:20260102T110000Z',
    'CREATED:20260101T100000Z',
    'SEQUENCE:2',
    'DTSTART;TZID=Europe/Berlin:20260105T090000',
    'DTEND;TZID=Europe/Berlin:20260105T091500',
    'RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10',
    'EXDATE;TZID=Europe/Berlin:20260107T090000',
    'RDATE;TZID="Europe/Berlin":20260110T090000,20260111T090000',
    'EXDATE;TZID=Europe/Berlin:20260112T090000',
    'SUMMARY:Standup\\, daily\\; with \\\\ backslash',
    'DESCRIPTION:Agenda:\\n1. news\\n2. blockers',
    'LOCATION:Room 4\\, Berlin',
    'STATUS:CONFIRMED',
    'TRANSP:OPAQUE',
    'ATTENDEE;CN="Ana, Lopez";PARTSTAT=ACCEPTED:mailto:ana@example.com',
    'ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bo@example.com',
    'END:VEVENT',
    'BEGIN:VEVENT',
    'UID:series1@google.com',
    'DTSTAMP:20260103T080000Z',
    'LAST-MODIFIED:20260103T080000Z',
    'RECURRENCE-ID;TZID=Europe/Berlin:20260114T090000',
    'DTSTART;TZID=Europe/Berlin:20260114T100000',
    'DTEND;TZID=Europe/Berlin:20260114T103000',
    'SUMMARY:Standup (moved)',
    'STATUS:CONFIRMED',
    'TRANSP:TRANSPARENT',
    'END:VEVENT',
    'END:VCALENDAR',
  ],
  'google.allDay': [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Sched//Google Calendar adapter//EN',
    'CALSCALE:GREGORIAN',
    'BEGIN:VEVENT',
    'UID:b-42@sched',
    'DTSTAMP:20260201T000000Z',
    'LAST-MODIFIED:20260201T000000Z',
    'DTSTART;VALUE=DATE:20260210',
    'DTEND;VALUE=DATE:20260212',
    'SUMMARY:Offsite',
    'STATUS:TENTATIVE',
    'TRANSP:TRANSPARENT',
    'X-SCHED-BOOKING-ID:b-42',
    'END:VEVENT',
    'END:VCALENDAR',
  ],
  'google.utc': [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Sched//Google Calendar adapter//EN',
    'CALSCALE:GREGORIAN',
    'BEGIN:VEVENT',
    'UID:utc1',
    'DTSTAMP:19700101T000000Z',
    'LAST-MODIFIED:19700101T000000Z',
    'DTSTART:20260401T120000Z',
    'DTEND:20260401T130000Z',
    'SUMMARY:No zone',
    'STATUS:CONFIRMED',
    'TRANSP:OPAQUE',
    'END:VEVENT',
    'END:VCALENDAR',
  ],
  'graph.timed': [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Sched//Outlook//EN',
    'BEGIN:VEVENT',
    'UID:b-77@sched',
    'DTSTAMP:20260301T080000Z',
    'LAST-MODIFIED:20260301T080000Z',
    'DTSTART:20260327T080000Z',
    'DTEND:20260327T093000Z',
    'SUMMARY:Review\\; Q1\\, Q2',
    'DESCRIPTION:Bring notes\\nand coffee',
    'STATUS:CONFIRMED',
    'TRANSP:OPAQUE',
    'X-SCHED-BOOKING-ID:b-77',
    'END:VEVENT',
    'END:VCALENDAR',
  ],
  'graph.allDay': [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Sched//Outlook//EN',
    'BEGIN:VEVENT',
    'UID:AAMk2',
    'DTSTAMP:20260401T000000Z',
    'LAST-MODIFIED:20260401T000000Z',
    'DTSTART;VALUE=DATE:20260501',
    'DTEND;VALUE=DATE:20260502',
    'SUMMARY:Holiday',
    'STATUS:CONFIRMED',
    'TRANSP:TRANSPARENT',
    'END:VEVENT',
    'END:VCALENDAR',
  ],
  'graph.cancelled': [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Sched//Outlook//EN',
    'BEGIN:VEVENT',
    'UID:AAMk3',
    'DTSTAMP:19700101T000000Z',
    'LAST-MODIFIED:19700101T000000Z',
    'DTSTART:20260601T120000Z',
    'DTEND:20260601T120000Z',
    'SUMMARY:',
    'DESCRIPTION:preview text',
    'STATUS:CANCELLED',
    'TRANSP:OPAQUE',
    'END:VEVENT',
    'END:VCALENDAR',
  ],
};

/** The VEVENT lines of a single-event calendar above. */
function veventLines(name: string): string[] {
  const lines = BEFORE[name]!;
  return lines.slice(lines.indexOf('BEGIN:VEVENT'), lines.lastIndexOf('END:VEVENT') + 1);
}

// A feed was the booking calendar's header with the feed's name, then each booking's VEVENT.
BEFORE.feed = [
  ...BEFORE['booking.plain']!.slice(0, 4),
  'NAME:Room A\\, floor 2',
  'X-WR-CALNAME:Room A\\, floor 2',
  ...veventLines('booking.plain'),
  ...veventLines('booking.cancelled'),
  'END:VCALENDAR',
];

function before(name: string): unknown {
  return ICAL.parse(`${BEFORE[name]!.join('\r\n')}\r\n`);
}

describe('the callers read back as before', () => {
  it.each(Object.entries(bookings))('booking event %s', (name, event) => {
    const written = renderBookingEvent(event);
    expectFolded(written);
    expect(ICAL.parse(written)).toEqual(before(`booking.${name}`));
  });

  it('export feed', () => {
    const written = renderFeed('Room A, floor 2', Object.values(bookings));
    expectFolded(written);
    expect(ICAL.parse(written)).toEqual(before('feed'));
  });

  it.each(Object.entries(googleGroups))('Google group %s', (name, group) => {
    const written = renderGroup(group);
    expectFolded(written);
    expect(ICAL.parse(written)).toEqual(before(`google.${name}`));
  });

  it.each(Object.entries(graphEvents))('Graph event %s', (name, event) => {
    const written = renderGraphEvent(event);
    expectFolded(written);
    expect(ICAL.parse(written)).toEqual(before(`graph.${name}`));
  });
});

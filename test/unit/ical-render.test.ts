import ICAL from 'ical.js';
import { describe, expect, it } from 'vitest';
import { expandObject } from '../../src/ical/expand-object.js';
import { renderBookingEvent, renderFeed } from '../../src/ical/render-event.js';
import { escapeText, foldLine } from '../../src/ical/write.js';
import { bookings } from './ical-fixtures.js';

const booking = bookings.plain!;

function unfold(text: string): string[] {
  return text.replace(/\r\n[ \t]/g, '').split('\r\n');
}

describe('renderBookingEvent', () => {
  it('writes a VCALENDAR with the required properties, CRLF only, and no METHOD', () => {
    const text = renderBookingEvent(booking);
    expect(text.endsWith('\r\n')).toBe(true);
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    const lines = unfold(text);
    expect(lines.slice(0, 4)).toEqual([
      'BEGIN:VCALENDAR',
      'VERSION:2.0',
      'PRODID:-//Sched//Sched//EN',
      'CALSCALE:GREGORIAN',
    ]);
    expect(lines).toContain('DTSTART:20260330T070000Z');
    expect(lines).toContain('DTEND:20260330T083000Z');
    expect(lines).toContain('DTSTAMP:20260301T123456Z');
    expect(lines).toContain('LAST-MODIFIED:20260301T123456Z');
    expect(lines).toContain('SEQUENCE:3');
    expect(lines).toContain('STATUS:CONFIRMED');
    expect(lines).toContain('TRANSP:OPAQUE');
    expect(lines).toContain('X-SCHED-BOOKING-ID:b0000000-0000-4000-8000-000000000001');
    expect(lines).toContain('ATTENDEE;CN="Ana, Lopez":mailto:ana@example.com');
    expect(lines).toContain('ATTENDEE:mailto:bo@example.com');
    expect(lines.some((line) => line.startsWith('METHOD'))).toBe(false);
  });

  it('escapes TEXT values and ical.js reads them back unchanged', () => {
    const text = renderBookingEvent(booking);
    expect(unfold(text)).toContain('SUMMARY:Room A\\; team sync\\, weekly');
    const event = new ICAL.Event(new ICAL.Component(ICAL.parse(text)).getFirstSubcomponent('vevent')!);
    expect(event.summary).toBe(booking.title);
    expect(event.description).toBe(booking.description);
    expect(event.uid).toBe(booking.uid);
    expect(event.startDate.toJSDate().getTime()).toBe(booking.startsAt);
    expect(escapeText('a\r\nb\rc')).toBe('a\\nb\\nc');
  });

  it('folds at 75 octets without splitting multibyte characters', () => {
    const title = 'Réunion — 会議室 🗓️ '.repeat(12);
    const text = renderBookingEvent({ ...booking, title, description: null });
    for (const line of text.split('\r\n')) {
      expect(Buffer.byteLength(line, 'utf8')).toBeLessThanOrEqual(75);
      expect(line).not.toContain('\uFFFD');
    }
    // Every physical line must be valid UTF-8 on its own.
    for (const line of text.split('\r\n')) {
      const bytes = Buffer.from(line, 'utf8');
      expect(new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toBe(line);
    }
    const event = new ICAL.Event(new ICAL.Component(ICAL.parse(text)).getFirstSubcomponent('vevent')!);
    expect(event.summary).toBe(title);
    expect(text).not.toContain('DESCRIPTION');
  });

  it('leaves short lines alone and folds long ASCII lines exactly at 75 then 74+1', () => {
    expect(foldLine('SUMMARY:short')).toBe('SUMMARY:short');
    const folded = foldLine('X:' + 'a'.repeat(200)).split('\r\n');
    expect(folded[0]).toHaveLength(75);
    expect(folded[1]).toHaveLength(75);
    expect(folded[1]?.startsWith(' ')).toBe(true);
  });

  it('round-trips through expandObject: same instants, title, status and booking id', () => {
    const cancelled = { ...booking, status: 'cancelled' as const, sequence: 4 };
    for (const event of [booking, cancelled]) {
      const result = expandObject(
        renderBookingEvent(event),
        { start: Date.parse('2026-01-01T00:00:00Z'), end: Date.parse('2027-01-01T00:00:00Z') },
        { floatingZone: 'Asia/Tokyo' },
      );
      if (!result.ok) throw new Error(result.error);
      expect(result.summary.bookingId).toBe(event.bookingId);
      expect(result.summary.uid).toBe(event.uid);
      expect(result.summary.title).toBe(event.title);
      expect(result.summary.sequence).toBe(event.sequence);
      expect(result.summary.recurring).toBe(false);
      expect(result.summary.lastModified).toBe(Date.parse('2026-03-01T12:34:56Z'));
      expect(result.summary.master).toEqual({
        startsAt: event.startsAt,
        endsAt: event.endsAt,
        allDay: false,
        status: event.status,
        transparency: 'opaque',
      });
      expect(result.occurrences).toHaveLength(1);
      expect(result.occurrences[0]).toMatchObject({
        startsAt: event.startsAt,
        endsAt: event.endsAt,
        title: event.title,
        status: event.status,
        transparency: 'opaque',
      });
    }
  });
});

describe('renderFeed', () => {
  it('writes one VCALENDAR with the calendar name and one VEVENT per event', () => {
    const second = { ...booking, uid: 'other@sched', bookingId: 'other', title: 'Second' };
    const text = renderFeed('Room A, floor 2', [booking, second]);
    const lines = unfold(text);
    expect(lines).toContain('X-WR-CALNAME:Room A\\, floor 2');
    expect(lines).toContain('NAME:Room A\\, floor 2');
    expect(lines.filter((line) => line === 'BEGIN:VCALENDAR')).toHaveLength(1);
    const root = new ICAL.Component(ICAL.parse(text));
    // ical.js types unknown X- properties as UNKNOWN and leaves their escapes in place.
    expect(root.getFirstPropertyValue('x-wr-calname')).toBe('Room A\\, floor 2');
    const events = root.getAllSubcomponents('vevent').map((c) => new ICAL.Event(c));
    expect(events.map((e) => e.summary)).toEqual([booking.title, 'Second']);
  });

  it('writes a valid empty feed', () => {
    const root = new ICAL.Component(ICAL.parse(renderFeed('Empty', [])));
    expect(root.getAllSubcomponents('vevent')).toHaveLength(0);
  });
});

import type { OutgoingEvent } from '../calendar/index.js';

const PRODID = '-//Sched//Sched//EN';
const MAX_LINE_OCTETS = 75;

/** RFC 5545 §3.3.11 TEXT escaping; a bare CR would otherwise end the content line early. */
export function escapeText(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/;/g, '\\;')
    .replace(/,/g, '\\,')
    .replace(/\r\n|\r|\n/g, '\\n');
}

/**
 * Parameter values cannot be escaped in RFC 5545 (RFC 6868 caret escaping is not universally read),
 * so characters that would end the value are dropped, and the value is quoted when it contains
 * a separator.
 */
function paramValue(value: string): string {
  const cleaned = value.replace(/["\r\n\p{Cc}]/gu, '');
  return /[;:,]/.test(cleaned) ? `"${cleaned}"` : cleaned;
}

/**
 * Folds one content line at 75 octets (RFC 5545 §3.1). Splitting inside a UTF-8 sequence is allowed by
 * the RFC, but many readers decode each physical line on its own, so breaks fall between code points.
 */
export function foldLine(line: string): string {
  if (Buffer.byteLength(line, 'utf8') <= MAX_LINE_OCTETS) return line;
  const out: string[] = [];
  let current = '';
  let octets = 0;
  // The first physical line holds 75 octets; continuation lines spend one on the leading space.
  let limit = MAX_LINE_OCTETS;
  for (const char of line) {
    const size = Buffer.byteLength(char, 'utf8');
    if (octets + size > limit) {
      out.push(current);
      current = '';
      octets = 0;
      limit = MAX_LINE_OCTETS - 1;
    }
    current += char;
    octets += size;
  }
  out.push(current);
  return out.join('\r\n ');
}

/** UTC DATE-TIME form, e.g. 20260105T080000Z; sub-second precision has no place in iCalendar. */
export function formatUtc(epochMs: number): string {
  return new Date(epochMs)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

function eventLines(event: OutgoingEvent): string[] {
  const stamp = formatUtc(event.updatedAt);
  const lines = [
    'BEGIN:VEVENT',
    `UID:${escapeText(event.uid)}`,
    `DTSTAMP:${stamp}`,
    `LAST-MODIFIED:${stamp}`,
    `DTSTART:${formatUtc(event.startsAt)}`,
    `DTEND:${formatUtc(event.endsAt)}`,
    `SEQUENCE:${Math.max(0, Math.trunc(event.sequence))}`,
    `SUMMARY:${escapeText(event.title)}`,
  ];
  if (event.description !== null && event.description !== '') {
    lines.push(`DESCRIPTION:${escapeText(event.description)}`);
  }
  lines.push(`STATUS:${event.status === 'cancelled' ? 'CANCELLED' : 'CONFIRMED'}`, 'TRANSP:OPAQUE');
  for (const attendee of event.attendees) {
    const name =
      attendee.name === undefined || attendee.name === '' ? '' : `;CN=${paramValue(attendee.name)}`;
    // An address with CR/LF would inject properties; mailto URIs never contain them legitimately.
    const email = attendee.email.replace(/[\r\n]/g, '');
    lines.push(`ATTENDEE${name}:mailto:${email}`);
  }
  lines.push(`X-SCHED-BOOKING-ID:${escapeText(event.bookingId)}`, 'END:VEVENT');
  return lines;
}

function calendar(headerExtras: string[], body: string[]): string {
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    `PRODID:${PRODID}`,
    'CALSCALE:GREGORIAN',
    ...headerExtras,
    ...body,
    'END:VCALENDAR',
  ];
  return lines.map(foldLine).join('\r\n') + '\r\n';
}

/**
 * One VCALENDAR (CRLF line ends, folded at 75 octets) holding the booking's VEVENT: UID, SEQUENCE,
 * DTSTAMP/LAST-MODIFIED from updatedAt, DTSTART/DTEND in UTC, SUMMARY, DESCRIPTION, ATTENDEEs,
 * STATUS, and X-SCHED-BOOKING-ID. No METHOD (CalDAV servers refuse stored objects carrying one).
 */
export function renderBookingEvent(event: OutgoingEvent): string {
  return calendar([], eventLines(event));
}

/** A feed of several events (ICS export): one VCALENDAR with X-WR-CALNAME and one VEVENT per event. */
export function renderFeed(calendarName: string, events: readonly OutgoingEvent[]): string {
  const name = escapeText(calendarName);
  // NAME is RFC 7986; X-WR-CALNAME is what Apple, Google and Outlook actually read.
  return calendar([`NAME:${name}`, `X-WR-CALNAME:${name}`], events.flatMap(eventLines));
}

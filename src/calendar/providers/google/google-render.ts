import { createHash } from 'node:crypto';
import { formatInstant, isValidTimeZone, parseInstant } from '../../../domain/time-zones.js';
import { escapeText, foldLine, formatUtc } from '../../../ical/render-event.js';
import { ProviderError } from '../../../integrations/index.js';
import { eventIdForBooking } from './google-ids.js';
import type { GoogleAttendee, GoogleDateTime, GoogleEvent } from './google-types.js';

/** A series master (or single event) with the exception objects Google keeps beside it. */
export type EventGroup = { master: GoogleEvent; exceptions: GoogleEvent[] };

export const BOOKING_PROPERTY = 'schedBookingId';
const PRODID = '-//Sched//Google Calendar adapter//EN';
const ETAG_SUFFIX = /\/x:[0-9a-f]{16}$/;
const RECURRENCE_LINE = /^(RRULE|EXRULE|RDATE|EXDATE)[;:][^\r\n]*$/i;

/**
 * The object's version: the master's etag alone when it has no exceptions (so it is what writes
 * return and what If-Match takes), else the master's etag with a digest of the exceptions' etags,
 * since a changed exception leaves the master's etag as it was.
 */
export function objectEtag(group: EventGroup): string | null {
  const master = group.master.etag ?? null;
  if (group.exceptions.length === 0) return master;
  const parts = group.exceptions
    .map((e) => `${e.id} ${e.etag ?? ''} ${e.status ?? ''}`)
    .sort()
    .join('\n');
  const digest = createHash('sha256').update(parts).digest('hex').slice(0, 16);
  return `${master ?? ''}/x:${digest}`;
}

/** The master's own etag inside an object etag, for If-Match. */
export function masterEtag(objectEtagValue: string): string {
  return objectEtagValue.replace(ETAG_SUFFIX, '');
}

function bad(event: GoogleEvent, what: string): ProviderError {
  return new ProviderError('BAD_RESPONSE', `Google event ${event.id}: ${what}`);
}

function paramValue(value: string): string {
  const cleaned = value.replace(/["\r\n\p{Cc}]/gu, '');
  return /[;:,]/.test(cleaned) ? `"${cleaned}"` : cleaned;
}

/**
 * DTSTART, DTEND, RECURRENCE-ID or EXDATE from an EventDateTime: a DATE for all-day values, the wall
 * time with TZID where a zone is known (recurrences expand in it, across DST), else UTC.
 */
function timing(
  name: string,
  value: GoogleDateTime,
  fallbackZone: string | undefined,
  event: GoogleEvent,
): string {
  if (value.date !== undefined) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value.date)) throw bad(event, `unreadable date ${value.date}`);
    return `${name};VALUE=DATE:${value.date.replace(/-/g, '')}`;
  }
  const instant = parseInstant(value.dateTime ?? '');
  if (instant === null) throw bad(event, `unreadable dateTime ${String(value.dateTime)}`);
  const zone = value.timeZone ?? fallbackZone;
  if (zone !== undefined && zone !== 'UTC' && isValidTimeZone(zone)) {
    const wall = formatInstant(instant, zone).slice(0, 19).replace(/[-:]/g, '');
    return `${name};TZID=${paramValue(zone)}:${wall}`;
  }
  return `${name}:${formatUtc(instant)}`;
}

function stamp(value: string | undefined): string | null {
  const instant = value === undefined ? null : parseInstant(value);
  return instant === null ? null : formatUtc(instant);
}

function attendeeLine(attendee: GoogleAttendee): string | null {
  const email = attendee.email?.replace(/[\r\n]/g, '');
  if (!email) return null;
  const params: string[] = [];
  if (attendee.displayName) params.push(`CN=${paramValue(attendee.displayName)}`);
  const partstat = {
    accepted: 'ACCEPTED',
    declined: 'DECLINED',
    tentative: 'TENTATIVE',
    needsAction: 'NEEDS-ACTION',
  }[attendee.responseStatus ?? ''];
  if (partstat) params.push(`PARTSTAT=${partstat}`);
  return `ATTENDEE${params.map((p) => `;${p}`).join('')}:mailto:${email}`;
}

function commonLines(event: GoogleEvent, uid: string): string[] {
  const lines = [`UID:${escapeText(uid)}`];
  const updated = stamp(event.updated) ?? stamp(event.created) ?? '19700101T000000Z';
  lines.push(`DTSTAMP:${updated}`, `LAST-MODIFIED:${updated}`);
  const created = stamp(event.created);
  if (created) lines.push(`CREATED:${created}`);
  if (event.sequence !== undefined) lines.push(`SEQUENCE:${Math.max(0, Math.trunc(event.sequence))}`);
  return lines;
}

function contentLines(event: GoogleEvent): string[] {
  const lines: string[] = [];
  if (event.summary !== undefined) lines.push(`SUMMARY:${escapeText(event.summary)}`);
  if (event.description) lines.push(`DESCRIPTION:${escapeText(event.description)}`);
  if (event.location) lines.push(`LOCATION:${escapeText(event.location)}`);
  lines.push(`STATUS:${event.status === 'tentative' ? 'TENTATIVE' : 'CONFIRMED'}`);
  // Working-location entries say where someone works, not that they are busy.
  const transparent = event.transparency === 'transparent' || event.eventType === 'workingLocation';
  lines.push(`TRANSP:${transparent ? 'TRANSPARENT' : 'OPAQUE'}`);
  for (const attendee of event.attendees ?? []) {
    const line = attendeeLine(attendee);
    if (line) lines.push(line);
  }
  const bookingId = event.extendedProperties?.private?.[BOOKING_PROPERTY];
  if (bookingId) lines.push(`X-SCHED-BOOKING-ID:${escapeText(bookingId)}`);
  return lines;
}

function startEnd(event: GoogleEvent, fallbackZone: string | undefined): string[] {
  if (!event.start) throw bad(event, 'no start');
  const lines = [timing('DTSTART', event.start, fallbackZone, event)];
  if (event.end) lines.push(timing('DTEND', event.end, event.start.timeZone ?? fallbackZone, event));
  return lines;
}

/**
 * The event's iCalUID, except on a booking's event: the insert supplies only the id, as the docs ask,
 * so Google makes the iCalUID itself (`<id>@google.com` as seen), and the booking's UID is given back
 * from its tag. An event whose id is the booking's own is the booking's event, whatever iCalUID Google
 * chose; a copy elsewhere keeps a UID of its own unless it carries Google's default.
 */
function uidOf(event: GoogleEvent): string {
  const bookingId = event.extendedProperties?.private?.[BOOKING_PROPERTY];
  if (bookingId) {
    const own = event.id === eventIdForBooking(bookingId);
    if (own || !event.iCalUID || event.iCalUID === `${event.id}@google.com`) return `${bookingId}@sched`;
  }
  return event.iCalUID ?? event.id;
}

/**
 * One VCALENDAR for a Google event and its exceptions: Google's `recurrence` holds RFC 5545 lines
 * already; a modified instance becomes a RECURRENCE-ID override, a cancelled one an EXDATE (Google
 * records a deleted instance as a cancelled exception, not in the master's recurrence).
 */
export function renderGroup(group: EventGroup): string {
  const { master } = group;
  const uid = uidOf(master);
  const zone = master.start?.timeZone;
  const recurring = (master.recurrence?.length ?? 0) > 0;
  const lines = ['BEGIN:VCALENDAR', 'VERSION:2.0', `PRODID:${PRODID}`, 'CALSCALE:GREGORIAN'];
  lines.push('BEGIN:VEVENT', ...commonLines(master, uid), ...startEnd(master, zone));
  for (const rule of master.recurrence ?? []) {
    if (RECURRENCE_LINE.test(rule)) lines.push(rule);
  }
  const exceptions = recurring ? group.exceptions : [];
  for (const exception of exceptions) {
    if (exception.status === 'cancelled' && exception.originalStartTime) {
      lines.push(timing('EXDATE', exception.originalStartTime, zone, exception));
    }
  }
  lines.push(...contentLines(master), 'END:VEVENT');
  for (const exception of exceptions) {
    if (exception.status === 'cancelled' || !exception.originalStartTime || !exception.start) continue;
    lines.push(
      'BEGIN:VEVENT',
      ...commonLines(exception, uid),
      timing('RECURRENCE-ID', exception.originalStartTime, zone, exception),
      ...startEnd(exception, zone),
      ...contentLines(exception),
      'END:VEVENT',
    );
  }
  lines.push('END:VCALENDAR');
  return lines.map(foldLine).join('\r\n') + '\r\n';
}

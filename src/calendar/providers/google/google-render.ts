import { createHash } from 'node:crypto';
import { formatInstant, isValidTimeZone, parseInstant } from '../../../domain/time-zones.js';
import {
  type Component,
  type DateValue,
  date,
  dates,
  integer,
  mailto,
  parseContentLine,
  type Property,
  raw,
  text,
  utc,
  vcalendar,
  writeComponent,
  zoned,
} from '../../../ical/write.js';
import { ProviderError } from '../../../integrations/index.js';
import { eventIdForBooking } from './google-ids.js';
import type { GoogleAttendee, GoogleDateTime, GoogleEvent } from './google-types.js';

/** A series master (or single event) with the exception objects Google keeps beside it. */
export type EventGroup = { master: GoogleEvent; exceptions: GoogleEvent[] };

export const BOOKING_PROPERTY = 'schedBookingId';
/** The private extended property naming the recurring booking a series master was written for. */
export const SERIES_PROPERTY = 'schedSeriesId';
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

/**
 * DTSTART, DTEND, RECURRENCE-ID or EXDATE from an EventDateTime: a DATE for all-day values, the wall
 * time with TZID where a zone is known (recurrences expand in it, across DST), else UTC.
 */
function timing(value: GoogleDateTime, fallbackZone: string | undefined, event: GoogleEvent): DateValue {
  if (value.date !== undefined) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value.date)) throw bad(event, `unreadable date ${value.date}`);
    return date(value.date);
  }
  const instant = parseInstant(value.dateTime ?? '');
  if (instant === null) throw bad(event, `unreadable dateTime ${String(value.dateTime)}`);
  const zone = value.timeZone ?? fallbackZone;
  if (zone !== undefined && zone !== 'UTC' && isValidTimeZone(zone)) {
    return zoned(zone, formatInstant(instant, zone).slice(0, 19));
  }
  return utc(instant);
}

function stamp(value: string | undefined): DateValue | null {
  const instant = value === undefined ? null : parseInstant(value);
  return instant === null ? null : utc(instant);
}

const PARTSTAT: Record<string, string> = {
  accepted: 'ACCEPTED',
  declined: 'DECLINED',
  tentative: 'TENTATIVE',
  needsAction: 'NEEDS-ACTION',
};

function attendeeProperty(attendee: GoogleAttendee): Property | null {
  if (!attendee.email?.replace(/[\r\n]/g, '')) return null;
  const params: Record<string, string> = {};
  if (attendee.displayName) params.CN = attendee.displayName;
  const partstat = PARTSTAT[attendee.responseStatus ?? ''];
  if (partstat) params.PARTSTAT = partstat;
  return mailto('ATTENDEE', attendee.email, params);
}

function commonProperties(event: GoogleEvent, uid: string): Property[] {
  const properties = [text('UID', uid)];
  const updated = stamp(event.updated) ?? stamp(event.created) ?? utc(0);
  properties.push(dates('DTSTAMP', updated), dates('LAST-MODIFIED', updated));
  const created = stamp(event.created);
  if (created) properties.push(dates('CREATED', created));
  if (event.sequence !== undefined) properties.push(integer('SEQUENCE', Math.max(0, event.sequence)));
  return properties;
}

function contentProperties(event: GoogleEvent): Property[] {
  const properties: Property[] = [];
  if (event.summary !== undefined) properties.push(text('SUMMARY', event.summary));
  if (event.description) properties.push(text('DESCRIPTION', event.description));
  if (event.location) properties.push(text('LOCATION', event.location));
  properties.push(raw('STATUS', event.status === 'tentative' ? 'TENTATIVE' : 'CONFIRMED'));
  // Working-location entries say where someone works, not that they are busy.
  const transparent = event.transparency === 'transparent' || event.eventType === 'workingLocation';
  properties.push(raw('TRANSP', transparent ? 'TRANSPARENT' : 'OPAQUE'));
  for (const attendee of event.attendees ?? []) {
    const property = attendeeProperty(attendee);
    if (property) properties.push(property);
  }
  const bookingId = event.extendedProperties?.private?.[BOOKING_PROPERTY];
  if (bookingId) properties.push(text('X-SCHED-BOOKING-ID', bookingId));
  return properties;
}

function startEnd(event: GoogleEvent, fallbackZone: string | undefined): Property[] {
  if (!event.start) throw bad(event, 'no start');
  const properties = [dates('DTSTART', timing(event.start, fallbackZone, event))];
  if (event.end) {
    properties.push(dates('DTEND', timing(event.end, event.start.timeZone ?? fallbackZone, event)));
  }
  return properties;
}

/**
 * The event's iCalUID, except on a booking's event: the insert supplies only the id, as the docs ask,
 * so Google makes the iCalUID itself (`<id>@google.com` as seen), and the booking's UID is given back
 * from its tag. An event whose id is the booking's own is the booking's event, whatever iCalUID Google
 * chose; a copy elsewhere keeps a UID of its own unless it carries Google's default.
 */
function uidOf(event: GoogleEvent): string {
  // A recurring booking's master (and its exceptions) carry the series' UID.
  const seriesId = event.extendedProperties?.private?.[SERIES_PROPERTY];
  const masterId = event.recurringEventId ?? event.id;
  if (seriesId && masterId === eventIdForBooking(seriesId)) return `${seriesId}@sched`;
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
  const properties = [...commonProperties(master, uid), ...startEnd(master, zone)];
  for (const rule of master.recurrence ?? []) {
    const property = RECURRENCE_LINE.test(rule) ? parseContentLine(rule) : null;
    if (property) properties.push(property);
  }
  const exceptions = recurring ? group.exceptions : [];
  for (const exception of exceptions) {
    if (exception.status === 'cancelled' && exception.originalStartTime) {
      properties.push(dates('EXDATE', timing(exception.originalStartTime, zone, exception)));
    }
  }
  properties.push(...contentProperties(master));
  const events: Component[] = [{ name: 'VEVENT', properties }];
  for (const exception of exceptions) {
    if (exception.status === 'cancelled' || !exception.originalStartTime || !exception.start) continue;
    events.push({
      name: 'VEVENT',
      properties: [
        ...commonProperties(exception, uid),
        dates('RECURRENCE-ID', timing(exception.originalStartTime, zone, exception)),
        ...startEnd(exception, zone),
        ...contentProperties(exception),
      ],
    });
  }
  return writeComponent(vcalendar(PRODID, events));
}

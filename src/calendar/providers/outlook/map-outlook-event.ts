import { Temporal } from 'temporal-polyfill';
import type { OutgoingEvent, OutgoingSeries } from '../../port/provider.js';
import {
  date,
  dates,
  type Property,
  raw,
  text,
  utc,
  vcalendar,
  writeComponent,
} from '../../../ical/write.js';
import { ianaToWindowsId, windowsIdToIana } from '../../../ical/windows-zones.js';
import { ProviderError } from '../../../integrations/index.js';

/**
 * The MAPI named property that tags Sched's events with their booking: a GUID of our own (not the
 * one from Microsoft's documentation samples, which every copied example shares).
 */
export const BOOKING_PROPERTY_ID = 'String {78cc33b7-76a6-466c-923d-30c10ba4e527} Name schedBookingId';

/**
 * transactionId makes a retried create return the first event. It is also returned on every read,
 * delta included, where extended properties cannot be expanded: so the booking id travels in it too.
 */
const TRANSACTION_PREFIX = 'sched-';

export type DateTimeTimeZone = { dateTime?: unknown; timeZone?: unknown };

/** The part of Graph's event JSON the adapter reads. */
export type GraphEvent = {
  id: string;
  '@odata.etag'?: string;
  '@removed'?: { reason?: string };
  changeKey?: string;
  iCalUId?: string;
  type?: string;
  subject?: string | null;
  body?: { contentType?: string; content?: string } | null;
  bodyPreview?: string;
  start?: DateTimeTimeZone;
  end?: DateTimeTimeZone;
  isAllDay?: boolean;
  isCancelled?: boolean;
  showAs?: string;
  lastModifiedDateTime?: string;
  createdDateTime?: string;
  transactionId?: string | null;
  singleValueExtendedProperties?: { id?: string; value?: string }[];
};

export function transactionIdFor(bookingId: string): string {
  return `${TRANSACTION_PREFIX}${bookingId}`;
}

export function isGraphEvent(value: unknown): value is GraphEvent {
  return typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string';
}

/** The etag Sched stores: the changeKey in the weak form Graph puts in @odata.etag and accepts in If-Match. */
export function etagOf(event: GraphEvent): string | null {
  if (typeof event.changeKey === 'string' && event.changeKey !== '') return `W/"${event.changeKey}"`;
  return typeof event['@odata.etag'] === 'string' ? event['@odata.etag'] : null;
}

export function bookingIdOf(event: GraphEvent): string | null {
  const wanted = BOOKING_PROPERTY_ID.toLowerCase();
  const property = event.singleValueExtendedProperties?.find((p) => p.id?.toLowerCase() === wanted);
  if (typeof property?.value === 'string' && property.value !== '') return property.value;
  const tx = event.transactionId;
  if (typeof tx === 'string' && tx.startsWith(TRANSACTION_PREFIX) && tx.length > TRANSACTION_PREFIX.length) {
    return tx.slice(TRANSACTION_PREFIX.length);
  }
  return null;
}

/** Graph writes 7 fractional digits and no offset; the zone is a Windows or IANA name. */
function instantOf(value: DateTimeTimeZone | undefined, what: string, id: string): number {
  const text = typeof value?.dateTime === 'string' ? value.dateTime : '';
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?$/.exec(text);
  if (!match)
    throw new ProviderError('BAD_RESPONSE', `event ${id} has no readable ${what}: ${JSON.stringify(value)}`);
  const ms = (match[2] ?? '.000').slice(0, 4).padEnd(4, '0');
  const zone = typeof value?.timeZone === 'string' ? value.timeZone.trim() : 'UTC';
  if (zone === '' || /^(utc|gmt|etc\/utc|coordinated universal time)$/i.test(zone)) {
    return Date.parse(`${match[1]}${ms}Z`);
  }
  const iana = windowsIdToIana(zone) ?? zone;
  try {
    return Temporal.PlainDateTime.from(`${match[1]}${ms}`).toZonedDateTime(iana).epochMilliseconds;
  } catch {
    throw new ProviderError('BAD_RESPONSE', `event ${id} is in an unknown time zone "${zone}"`);
  }
}

/**
 * All-day events come back midnight-to-midnight on their own dates whatever zone is asked for, so
 * the date is read straight from the value, never converted.
 */
function dateOf(value: DateTimeTimeZone | undefined, what: string, id: string): string {
  const text = typeof value?.dateTime === 'string' ? value.dateTime : '';
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (!match) throw new ProviderError('BAD_RESPONSE', `event ${id} has no readable ${what} date`);
  return `${match[1]}-${match[2]}-${match[3]}`;
}

function nextDay(isoDate: string): string {
  return Temporal.PlainDate.from(isoDate).add({ days: 1 }).toString();
}

function modifiedAt(event: GraphEvent): number | null {
  for (const text of [event.lastModifiedDateTime, event.createdDateTime]) {
    if (typeof text !== 'string') continue;
    const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z?$/.exec(text);
    if (match) return Date.parse(`${match[1]}${(match[2] ?? '.000').slice(0, 4).padEnd(4, '0')}Z`);
  }
  return null;
}

function description(event: GraphEvent): string | null {
  const body = event.body;
  if (body && typeof body.content === 'string' && body.contentType?.toLowerCase() === 'text')
    return body.content;
  return typeof event.bodyPreview === 'string' && event.bodyPreview !== '' ? event.bodyPreview : null;
}

/**
 * One Graph event (a single instance, an occurrence or an exception) as a VCALENDAR with one
 * non-recurring VEVENT: Graph gives each instance its own id and iCalUId, so each is its own object.
 */
export function renderGraphEvent(event: GraphEvent): string {
  const id = event.id;
  const bookingId = bookingIdOf(event);
  const uid = bookingId ? `${bookingId}@sched` : (event.iCalUId ?? id);
  const stamp = utc(modifiedAt(event) ?? 0);
  const properties: Property[] = [text('UID', uid), dates('DTSTAMP', stamp), dates('LAST-MODIFIED', stamp)];
  if (event.isAllDay) {
    const start = dateOf(event.start, 'start', id);
    let end = dateOf(event.end, 'end', id);
    if (end <= start) end = nextDay(start);
    properties.push(dates('DTSTART', date(start)), dates('DTEND', date(end)));
  } else {
    const start = instantOf(event.start, 'start', id);
    const end = Math.max(start, instantOf(event.end, 'end', id));
    properties.push(dates('DTSTART', utc(start)), dates('DTEND', utc(end)));
  }
  properties.push(text('SUMMARY', event.subject ?? ''));
  const body = description(event);
  if (body) properties.push(text('DESCRIPTION', body));
  const status = event.isCancelled ? 'CANCELLED' : event.showAs === 'tentative' ? 'TENTATIVE' : 'CONFIRMED';
  // Working elsewhere counts as free in Graph's own availability view (scheduleInformation).
  const transparent = event.showAs === 'free' || event.showAs === 'workingElsewhere';
  properties.push(raw('STATUS', status), raw('TRANSP', transparent ? 'TRANSPARENT' : 'OPAQUE'));
  if (bookingId) properties.push(text('X-SCHED-BOOKING-ID', bookingId));
  return writeComponent(
    vcalendar('-//Sched//Outlook//EN', [{ name: 'VEVENT', properties }], { gregorian: false }),
  );
}

function graphTime(epochMs: number): { dateTime: string; timeZone: string } {
  return { dateTime: new Date(epochMs).toISOString().replace(/Z$/, '0000'), timeZone: 'UTC' };
}

/**
 * The event body for POST and PATCH. Times go in UTC: Outlook shows them in each viewer's zone, and
 * Sched's instants are exact. Attendees are named in the body, not as Graph attendees: Graph mails a
 * meeting request to every attendee on each write, and sync must never send mail on its own (Google's
 * writes use sendUpdates=none for the same reason).
 */
export function toGraphEvent(event: OutgoingEvent, create: boolean): Record<string, unknown> {
  const attendees = event.attendees.map((a) => (a.name ? `${a.name} <${a.email}>` : a.email));
  const content = [event.description ?? '', attendees.length > 0 ? `Attendees: ${attendees.join(', ')}` : '']
    .filter((part) => part !== '')
    .join('\n\n');
  const body: Record<string, unknown> = {
    subject: event.title,
    body: { contentType: 'text', content },
    start: graphTime(event.startsAt),
    end: graphTime(event.endsAt),
    isAllDay: false,
    showAs: 'busy',
    singleValueExtendedProperties: [{ id: BOOKING_PROPERTY_ID, value: event.bookingId }],
  };
  if (create) body.transactionId = transactionIdFor(event.bookingId);
  return body;
}

const GRAPH_WEEKDAYS: Record<string, string> = {
  mon: 'monday',
  tue: 'tuesday',
  wed: 'wednesday',
  thu: 'thursday',
  fri: 'friday',
  sat: 'saturday',
  sun: 'sunday',
};

/** The Windows zone id Graph documents for `zone`; the IANA name itself where there is none. */
export function graphZoneOf(zone: string): string {
  return ianaToWindowsId(zone) ?? zone;
}

function wallIn(epochMs: number, zone: string): Temporal.ZonedDateTime {
  return Temporal.Instant.fromEpochMilliseconds(epochMs).toZonedDateTimeISO(zone);
}

/** A local wall time as Graph's dateTimeTimeZone, the zone as a Windows id. */
export function graphWallTime(epochMs: number, zone: string): { dateTime: string; timeZone: string } {
  const wall = wallIn(epochMs, zone).toPlainDateTime().toString({ smallestUnit: 'second' });
  return { dateTime: `${wall}.0000000`, timeZone: graphZoneOf(zone) };
}

/**
 * A recurring booking as a Graph series master: the first instance's times as wall times of the
 * series' zone, and a patternedRecurrence (daily, weekly with its days, or absoluteMonthly on the
 * start's day; numbered, or ending on the local date of the last occurrence, which is known exactly
 * because every occurrence is stored). The series id travels in the extended property and in
 * transactionId, as a booking's id does, so its instances read back as Sched's own.
 */
export function toGraphSeries(series: OutgoingSeries, create: boolean): Record<string, unknown> {
  const byInstance = [...series.occurrences].sort((a, b) => a.recurrenceId - b.recurrenceId);
  const first = byInstance[0];
  const last = byInstance[byInstance.length - 1];
  if (!first || !last) throw new ProviderError('REJECTED', `series ${series.seriesId} has no occurrence`);
  const zone = series.timeZone;
  const start = wallIn(first.recurrenceId, zone);
  const { rule } = series;
  const pattern: Record<string, unknown> = { type: 'daily', interval: rule.interval };
  if (rule.frequency === 'weekly') {
    const days = rule.byWeekday ?? [['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'][start.dayOfWeek - 1]!];
    Object.assign(pattern, {
      type: 'weekly',
      daysOfWeek: days.map((day) => GRAPH_WEEKDAYS[day]),
      firstDayOfWeek: 'monday',
    });
  } else if (rule.frequency === 'monthly') {
    Object.assign(pattern, { type: 'absoluteMonthly', dayOfMonth: start.day });
  }
  const startDate = start.toPlainDate().toString();
  // Outlook puts a monthly rule on the 29th-31st on the last day of shorter months, where RFC 5545
  // and Sched skip them: such a series ends on its last date (a count would include those days), and
  // the provider deletes the instances Outlook adds.
  const shortMonths = rule.frequency === 'monthly' && start.day > 28;
  const range =
    rule.count !== null && !shortMonths
      ? { type: 'numbered', numberOfOccurrences: rule.count, startDate }
      : { type: 'endDate', endDate: wallIn(last.recurrenceId, zone).toPlainDate().toString(), startDate };
  const body: Record<string, unknown> = {
    subject: first.title,
    body: { contentType: 'text', content: first.description ?? '' },
    start: graphWallTime(first.recurrenceId, zone),
    end: graphWallTime(first.recurrenceId + (first.endsAt - first.startsAt), zone),
    isAllDay: false,
    showAs: 'busy',
    recurrence: { pattern, range: { ...range, recurrenceTimeZone: graphZoneOf(zone) } },
    singleValueExtendedProperties: [{ id: BOOKING_PROPERTY_ID, value: series.seriesId }],
  };
  if (create) body.transactionId = transactionIdFor(series.seriesId);
  return body;
}

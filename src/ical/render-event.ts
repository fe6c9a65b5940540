import type { OutgoingEvent } from './outgoing-event.js';
import { type OutgoingSeries, seriesRange, seriesVevents, vtimezone } from './render-series.js';
import {
  type Component,
  dates,
  integer,
  mailto,
  type Property,
  raw,
  text,
  utc,
  vcalendar,
  writeComponent,
} from './write.js';

const PRODID = '-//Sched//Sched//EN';

function bookingVevent(event: OutgoingEvent): Component {
  const stamp = utc(event.updatedAt);
  const properties: Property[] = [
    text('UID', event.uid),
    dates('DTSTAMP', stamp),
    dates('LAST-MODIFIED', stamp),
    dates('DTSTART', utc(event.startsAt)),
    dates('DTEND', utc(event.endsAt)),
    integer('SEQUENCE', Math.max(0, event.sequence)),
    text('SUMMARY', event.title),
  ];
  if (event.description !== null && event.description !== '') {
    properties.push(text('DESCRIPTION', event.description));
  }
  properties.push(
    raw('STATUS', event.status === 'cancelled' ? 'CANCELLED' : 'CONFIRMED'),
    raw('TRANSP', 'OPAQUE'),
  );
  for (const attendee of event.attendees) {
    const named = attendee.name !== undefined && attendee.name !== '';
    properties.push(mailto('ATTENDEE', attendee.email, named ? { CN: attendee.name! } : undefined));
  }
  properties.push(text('X-SCHED-BOOKING-ID', event.bookingId));
  return { name: 'VEVENT', properties };
}

/**
 * One VCALENDAR (CRLF line ends, folded at 75 octets) holding the booking's VEVENT: UID, SEQUENCE,
 * DTSTAMP/LAST-MODIFIED from updatedAt, DTSTART/DTEND in UTC, SUMMARY, DESCRIPTION, ATTENDEEs,
 * STATUS, and X-SCHED-BOOKING-ID. No METHOD (CalDAV servers refuse stored objects carrying one).
 */
export function renderBookingEvent(event: OutgoingEvent): string {
  return writeComponent(vcalendar(PRODID, [bookingVevent(event)]));
}

/**
 * A feed of several events (ICS export): one VCALENDAR with X-WR-CALNAME, one VEVENT per event, and
 * per recurring booking one recurring VEVENT (with its overrides) and a VTIMEZONE for each zone used.
 */
export function renderFeed(
  calendarName: string,
  events: readonly OutgoingEvent[],
  series: readonly OutgoingSeries[] = [],
): string {
  // NAME is RFC 7986; X-WR-CALNAME is what Apple, Google and Outlook actually read.
  const properties = [text('NAME', calendarName), text('X-WR-CALNAME', calendarName)];
  const ranges = new Map<string, { start: number; end: number }>();
  for (const one of series) {
    if (one.occurrences.length === 0) continue;
    const range = seriesRange(one);
    const known = ranges.get(one.timeZone);
    ranges.set(
      one.timeZone,
      known ? { start: Math.min(known.start, range.start), end: Math.max(known.end, range.end) } : range,
    );
  }
  const components = [
    ...[...ranges].map(([zone, range]) => vtimezone(zone, range)),
    ...events.map(bookingVevent),
    ...series.flatMap(seriesVevents),
  ];
  return writeComponent(vcalendar(PRODID, components, { properties }));
}

/**
 * One VCALENDAR holding a recurring booking as a calendar server stores it: the VTIMEZONE of its
 * zone, the master with its rule and EXDATEs, and its RECURRENCE-ID overrides (the feed's text).
 */
export function renderSeriesObject(series: OutgoingSeries): string {
  const zone = series.occurrences.length > 0 ? [vtimezone(series.timeZone, seriesRange(series))] : [];
  return writeComponent(vcalendar(PRODID, [...zone, ...seriesVevents(series)]));
}

import type { OutgoingEvent } from './outgoing-event.js';
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

/** A feed of several events (ICS export): one VCALENDAR with X-WR-CALNAME and one VEVENT per event. */
export function renderFeed(calendarName: string, events: readonly OutgoingEvent[]): string {
  // NAME is RFC 7986; X-WR-CALNAME is what Apple, Google and Outlook actually read.
  const properties = [text('NAME', calendarName), text('X-WR-CALNAME', calendarName)];
  return writeComponent(vcalendar(PRODID, events.map(bookingVevent), { properties }));
}

import type { OutgoingEvent } from '../domain/calendar-provider.js';

/**
 * One VCALENDAR (CRLF line ends, folded at 75 octets) holding the booking's VEVENT: UID, SEQUENCE,
 * DTSTAMP/LAST-MODIFIED from updatedAt, DTSTART/DTEND in UTC, SUMMARY, DESCRIPTION, ATTENDEEs,
 * STATUS, and X-SCHED-BOOKING-ID. No METHOD (CalDAV servers refuse stored objects carrying one).
 */
export function renderBookingEvent(event: OutgoingEvent): string {
  void event;
  throw new Error('not implemented yet');
}

/** A feed of several events (ICS export): one VCALENDAR with X-WR-CALNAME and one VEVENT per event. */
export function renderFeed(calendarName: string, events: readonly OutgoingEvent[]): string {
  void calendarName;
  void events;
  throw new Error('not implemented yet');
}

/**
 * Events as each iCalendar caller receives them: bookings (CalDAV and the export feeds), Google event
 * groups (a series with a cancelled and a moved instance, an all-day entry, a zoneless event) and
 * Graph events (a Windows zone, an all-day entry ending on its start day, a cancelled one).
 */
import type { EventGroup } from '../../src/calendar/providers/google/google-render.js';
import type { GraphEvent } from '../../src/calendar/providers/outlook/map-outlook-event.js';
import type { OutgoingEvent } from '../../src/ical/outgoing-event.js';

export const bookings: Record<string, OutgoingEvent> = {
  plain: {
    uid: 'b0000000-0000-4000-8000-000000000001@sched',
    bookingId: 'b0000000-0000-4000-8000-000000000001',
    sequence: 3,
    startsAt: Date.parse('2026-03-30T07:00:00Z'),
    endsAt: Date.parse('2026-03-30T08:30:00Z'),
    timeZone: 'Europe/Berlin',
    title: 'Room A; team sync, weekly',
    description: 'Line one\nLine two with a back\\slash',
    status: 'confirmed' as const,
    attendees: [{ email: 'ana@example.com', name: 'Ana, Lopez' }, { email: 'bo@example.com' }],
    updatedAt: Date.parse('2026-03-01T12:34:56.789Z'),
  },
  cancelled: {
    uid: 'b0000000-0000-4000-8000-000000000002@sched',
    bookingId: 'b0000000-0000-4000-8000-000000000002',
    sequence: 5,
    startsAt: Date.parse('2026-07-01T22:15:00Z'),
    endsAt: Date.parse('2026-07-01T23:00:00Z'),
    timeZone: 'UTC',
    title: 'Réunion — 会議室 🗓️ '.repeat(5),
    description: null,
    status: 'cancelled' as const,
    attendees: [],
    updatedAt: Date.parse('2026-06-30T00:00:00Z'),
  },
};

export const googleGroups: Record<string, EventGroup> = {
  series: {
    master: {
      id: 'series1',
      etag: '"1"',
      status: 'confirmed' as const,
      created: '2026-01-01T10:00:00Z',
      updated: '2026-01-02T11:00:00.500Z',
      summary: 'Standup, daily; with \\ backslash',
      description: 'Agenda:\n1. news\n2. blockers',
      location: 'Room 4, Berlin',
      start: { dateTime: '2026-01-05T09:00:00+01:00', timeZone: 'Europe/Berlin' },
      end: { dateTime: '2026-01-05T09:15:00+01:00', timeZone: 'Europe/Berlin' },
      recurrence: [
        'RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10',
        'EXDATE;TZID=Europe/Berlin:20260107T090000',
        'RDATE;TZID="Europe/Berlin":20260110T090000,20260111T090000',
      ],
      iCalUID: 'series1@google.com',
      sequence: 2,
      attendees: [
        { email: 'ana@example.com', displayName: 'Ana, Lopez', responseStatus: 'accepted' },
        { email: 'bo@example.com', responseStatus: 'needsAction' },
        { displayName: 'no address' },
      ],
    },
    exceptions: [
      {
        id: 'series1_20260112T080000Z',
        status: 'cancelled' as const,
        recurringEventId: 'series1',
        originalStartTime: { dateTime: '2026-01-12T09:00:00+01:00', timeZone: 'Europe/Berlin' },
      },
      {
        id: 'series1_20260114T080000Z',
        status: 'confirmed' as const,
        updated: '2026-01-03T08:00:00Z',
        summary: 'Standup (moved)',
        recurringEventId: 'series1',
        originalStartTime: { dateTime: '2026-01-14T09:00:00+01:00', timeZone: 'Europe/Berlin' },
        start: { dateTime: '2026-01-14T10:00:00+01:00', timeZone: 'Europe/Berlin' },
        end: { dateTime: '2026-01-14T10:30:00+01:00', timeZone: 'Europe/Berlin' },
        transparency: 'transparent' as const,
      },
    ],
  },
  allDay: {
    master: {
      id: 'allday1',
      status: 'tentative' as const,
      updated: '2026-02-01T00:00:00Z',
      summary: 'Offsite',
      start: { date: '2026-02-10' },
      end: { date: '2026-02-12' },
      eventType: 'workingLocation',
      extendedProperties: { private: { schedBookingId: 'b-42' } },
    },
    exceptions: [],
  },
  utc: {
    master: {
      id: 'utc1',
      summary: 'No zone',
      start: { dateTime: '2026-04-01T12:00:00Z' },
      end: { dateTime: '2026-04-01T13:00:00Z' },
    },
    exceptions: [],
  },
};

export const graphEvents: Record<string, GraphEvent> = {
  timed: {
    id: 'AAMk1',
    iCalUId: '040000008200E00074C5B7101A82E008',
    subject: 'Review; Q1, Q2',
    body: { contentType: 'text', content: 'Bring notes\nand coffee' },
    start: { dateTime: '2026-03-27T09:00:00.0000000', timeZone: 'W. Europe Standard Time' },
    end: { dateTime: '2026-03-27T10:30:00.0000000', timeZone: 'W. Europe Standard Time' },
    showAs: 'busy',
    lastModifiedDateTime: '2026-03-01T08:00:00.1234567Z',
    transactionId: 'sched-b-77',
  },
  allDay: {
    id: 'AAMk2',
    subject: 'Holiday',
    isAllDay: true,
    start: { dateTime: '2026-05-01T00:00:00.0000000', timeZone: 'UTC' },
    end: { dateTime: '2026-05-01T00:00:00.0000000', timeZone: 'UTC' },
    showAs: 'free',
    createdDateTime: '2026-04-01T00:00:00Z',
  },
  cancelled: {
    id: 'AAMk3',
    subject: null,
    bodyPreview: 'preview text',
    isCancelled: true,
    showAs: 'tentative',
    start: { dateTime: '2026-06-01T12:00:00', timeZone: 'UTC' },
    end: { dateTime: '2026-06-01T11:00:00', timeZone: 'UTC' },
  },
};

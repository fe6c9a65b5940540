export const MAX_OCCURRENCES_PER_SERIES = 10_000;

export type OccurrenceStatus = 'confirmed' | 'tentative' | 'cancelled';
export type Transparency = 'opaque' | 'transparent';

export type Occurrence = {
  startsAt: number;
  endsAt: number;
  allDay: boolean;
  title: string | null;
  status: OccurrenceStatus;
  transparency: Transparency;
  /** The occurrence's original start (RFC 3339 UTC, or YYYY-MM-DD for all-day); null when not recurring. */
  recurrenceId: string | null;
};

export type ObjectSummary = {
  uid: string | null;
  /** X-SCHED-BOOKING-ID: set on the events Sched writes for bookings. */
  bookingId: string | null;
  title: string | null;
  recurring: boolean;
  sequence: number;
  /** LAST-MODIFIED (or DTSTAMP) of the master, epoch ms. */
  lastModified: number | null;
  /** The master's own time and state; for a booking's event this is what the sync compares. */
  master: { startsAt: number; endsAt: number; allDay: boolean; status: OccurrenceStatus } | null;
};

export type ExpandOptions = {
  /** Zone for floating times and all-day dates (the resource's zone). */
  floatingZone: string;
  maxOccurrences?: number;
  /** Wall-clock budget for this object, in ms. */
  timeBudgetMs?: number;
};

export type ExpandResult =
  | { ok: true; summary: ObjectSummary; occurrences: Occurrence[]; truncated: boolean }
  | { ok: false; error: string };

/**
 * Parses one object (a VCALENDAR with a master and overrides, as stored per remote object) and
 * expands the occurrences that overlap [start, end): RRULE, RDATE, EXDATE, RECURRENCE-ID overrides,
 * cancelled instances. Bounded by maxOccurrences and the time budget (truncated: true).
 */
export function expandObject(
  ics: string,
  window: { start: number; end: number },
  options: ExpandOptions,
): ExpandResult {
  void ics;
  void window;
  void options;
  throw new Error('not implemented yet');
}

import { defaultSchedule } from '../../src/domain/index.js';
import type {
  AvailabilityQuery,
  Interval,
  ResourceAvailabilityInput,
  Schedule,
  Slot,
  WallInterval,
} from '../../src/domain/index.js';

/** Epoch ms of an ISO instant; Date.parse is independent of the parser under test. */
export function at(isoText: string): number {
  const ms = Date.parse(isoText);
  if (Number.isNaN(ms)) throw new Error(`bad fixture instant ${isoText}`);
  return ms;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

export function span(start: string, end: string): Interval {
  return { start: at(start), end: at(end) };
}

export function isoSpans(intervals: readonly Interval[]): [string, string][] {
  return intervals.map((interval) => [iso(interval.start), iso(interval.end)]);
}

/** Seeded PRNG (mulberry32) so property tests are reproducible. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function withHours(timeZone: string, changes: Partial<Schedule> = {}): Schedule {
  return { ...defaultSchedule(timeZone), ...changes };
}

export const everyDay = (hours: readonly WallInterval[]): Schedule['weekly'] => ({
  mon: hours,
  tue: hours,
  wed: hours,
  thu: hours,
  fri: hours,
  sat: hours,
  sun: hours,
});

export function resource(
  resourceId: string,
  schedule: Partial<Schedule> = {},
  bookings: Interval[] = [],
  calendarBusy: Interval[] = [],
): ResourceAvailabilityInput {
  return { resourceId, schedule: withHours('UTC', schedule), bookings, calendarBusy };
}

export const MONDAY = span('2026-05-18T00:00:00Z', '2026-05-19T00:00:00Z');
/** A "now" well before every fixture, so notice and horizon never get in the way unless a test wants them. */
export const LONG_AGO = at('2026-05-01T00:00:00Z');

export function query(changes: Partial<AvailabilityQuery> = {}): AvailabilityQuery {
  return { window: MONDAY, durationMinutes: 30, intervalMinutes: 30, mode: 'any', now: LONG_AGO, ...changes };
}

/** Slot starts as UTC 'HH:MM', for single-day fixtures. */
export const starts = (slots: readonly Slot[]): string[] =>
  slots.map((slot) => iso(slot.start).slice(11, 16));

import { clipIntervals, mergeIntervals } from './intervals.js';
import type { Interval } from './intervals.js';

export type BusySource = 'booking' | 'calendar';
export type BusyBlock = { start: number; end: number; source: BusySource };

/**
 * Sources are merged separately rather than together so each block can still say why the time is busy;
 * the price is that a booking block and a calendar block may overlap each other in the result.
 */
export function mergeBusy(
  bookings: readonly Interval[],
  calendar: readonly Interval[],
  window: Interval,
): BusyBlock[] {
  const tagged = (intervals: readonly Interval[], source: BusySource): BusyBlock[] =>
    clipIntervals(mergeIntervals(intervals), window).map(({ start, end }) => ({ start, end, source }));
  // The sort is stable, so a booking block stays ahead of a calendar block with identical bounds.
  return [...tagged(bookings, 'booking'), ...tagged(calendar, 'calendar')].sort(
    (a, b) => a.start - b.start || a.end - b.end,
  );
}

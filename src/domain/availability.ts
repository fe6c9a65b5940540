import { MS_PER_DAY, MS_PER_MINUTE } from './civil-date.js';
import {
  clipIntervals,
  intersectIntervalLists,
  mergeIntervals,
  overlaps,
  subtractIntervals,
} from './intervals.js';
import type { Interval } from './intervals.js';
import { workingIntervals } from './schedule.js';
import type { Schedule } from './schedule.js';
import { ZoneTimeline } from './zone-timeline.js';

export type ResourceAvailabilityInput = {
  resourceId: string;
  schedule: Schedule;
  /** Confirmed bookings as booked; buffers are applied here, not by the caller. */
  bookings: readonly Interval[];
  /** Busy time from connected calendars, already stripped of transparent events. */
  calendarBusy: readonly Interval[];
};
export type AvailabilityQuery = {
  window: Interval;
  durationMinutes: number;
  intervalMinutes: number;
  mode: 'all' | 'any';
  now: number;
};
export type Slot = { start: number; end: number; resourceIds: string[] };
export type BookingCheck = {
  kind: 'booking' | 'calendar_event' | 'outside_schedule';
  start: number;
  end: number;
};

const DEFAULT_MAX_SLOTS = 10_000;

/** [now + minimum notice, now + horizon): the only time a booking may be placed in. */
function bookableRegion(schedule: Schedule, now: number): Interval {
  return {
    start: now + schedule.minimumNoticeMinutes * MS_PER_MINUTE,
    end: now + schedule.bookingHorizonDays * MS_PER_DAY,
  };
}

function intersect(a: Interval, b: Interval): Interval {
  return { start: Math.max(a.start, b.start), end: Math.min(a.end, b.end) };
}

function busyWithin(input: ResourceAvailabilityInput, range: Interval): Interval[] {
  const before = input.schedule.bufferBeforeMinutes * MS_PER_MINUTE;
  const after = input.schedule.bufferAfterMinutes * MS_PER_MINUTE;
  const busy: Interval[] = [];
  for (const booking of input.bookings) {
    // An empty booking blocks nothing; widening it first would invent busy time out of its buffers.
    if (booking.end <= booking.start) continue;
    const start = booking.start - before;
    const end = booking.end + after;
    if (start < range.end && end > range.start) busy.push({ start, end });
  }
  for (const event of input.calendarBusy) {
    if (event.start < range.end && event.end > range.start) busy.push(event);
  }
  return mergeIntervals(busy);
}

/**
 * Free time (working minus busy) before any clipping by window, notice or horizon: slot grids are
 * anchored at these starts. Working time is gathered from local midnight of the day before the window,
 * so continuous working time reaching further back is anchored at that midnight rather than at the
 * window's arbitrary start.
 */
function anchoredFree(input: ResourceAvailabilityInput, window: Interval): Interval[] {
  const timeline = ZoneTimeline.covering(input.schedule.timeZone, {
    start: window.start - 4 * MS_PER_DAY,
    end: window.end + 4 * MS_PER_DAY,
  });
  const range = {
    start: timeline.startOfDay(timeline.localDay(window.start) - 1),
    end: window.end + MS_PER_DAY,
  };
  return subtractIntervals(workingIntervals(input.schedule, range), busyWithin(input, range));
}

export function freeIntervals(input: ResourceAvailabilityInput, window: Interval, now: number): Interval[] {
  if (window.end <= window.start) return [];
  const allowed = intersect(window, bookableRegion(input.schedule, now));
  if (allowed.end <= allowed.start) return [];
  return clipIntervals(anchoredFree(input, window), allowed);
}

/** Ascending slot starts on each free interval's grid whose whole slot fits the interval and `allowed`. */
function* gridStarts(
  free: readonly Interval[],
  allowed: Interval,
  durationMs: number,
  stepMs: number,
): Generator<number, void, undefined> {
  for (const interval of free) {
    if (interval.start >= allowed.end) return;
    const lastEnd = Math.min(interval.end, allowed.end);
    const firstIndex =
      allowed.start > interval.start ? Math.ceil((allowed.start - interval.start) / stepMs) : 0;
    for (let start = interval.start + firstIndex * stepMs; start + durationMs <= lastEnd; start += stepMs) {
      yield start;
    }
  }
}

function assertPositiveMinutes(value: number, name: string): void {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be a positive number of minutes`);
}

export function findSlots(
  resources: readonly ResourceAvailabilityInput[],
  query: AvailabilityQuery,
  maxSlots: number = DEFAULT_MAX_SLOTS,
): Slot[] {
  assertPositiveMinutes(query.durationMinutes, 'durationMinutes');
  assertPositiveMinutes(query.intervalMinutes, 'intervalMinutes');
  const { window, now } = query;
  if (resources.length === 0 || maxSlots <= 0 || window.end <= window.start) return [];
  const durationMs = query.durationMinutes * MS_PER_MINUTE;
  const stepMs = query.intervalMinutes * MS_PER_MINUTE;
  return query.mode === 'all'
    ? collectiveSlots(resources, window, now, durationMs, stepMs, maxSlots)
    : roundRobinSlots(resources, window, now, durationMs, stepMs, maxSlots);
}

function collectiveSlots(
  resources: readonly ResourceAvailabilityInput[],
  window: Interval,
  now: number,
  durationMs: number,
  stepMs: number,
  maxSlots: number,
): Slot[] {
  let allowed = window;
  for (const resource of resources) allowed = intersect(allowed, bookableRegion(resource.schedule, now));
  if (allowed.end <= allowed.start) return [];
  const common = intersectIntervalLists(resources.map((resource) => anchoredFree(resource, window)));
  const ids = resources.map((resource) => resource.resourceId);
  const slots: Slot[] = [];
  for (const start of gridStarts(common, allowed, durationMs, stepMs)) {
    slots.push({ start, end: start + durationMs, resourceIds: [...ids] });
    if (slots.length >= maxSlots) break;
  }
  return slots;
}

function roundRobinSlots(
  resources: readonly ResourceAvailabilityInput[],
  window: Interval,
  now: number,
  durationMs: number,
  stepMs: number,
  maxSlots: number,
): Slot[] {
  const cursors = resources.map((resource) => {
    const allowed = intersect(window, bookableRegion(resource.schedule, now));
    const free = allowed.end > allowed.start ? anchoredFree(resource, window) : [];
    return gridStarts(free, allowed, durationMs, stepMs);
  });
  const heads = cursors.map((cursor) => cursor.next().value);
  const slots: Slot[] = [];
  // k-way merge of per-resource ascending streams: every slot has the same duration, so equal starts
  // mean equal slots, and scanning heads in input order yields resourceIds in input order.
  while (slots.length < maxSlots) {
    let earliest = Infinity;
    for (const head of heads) if (head !== undefined && head < earliest) earliest = head;
    if (earliest === Infinity) break;
    const resourceIds: string[] = [];
    heads.forEach((head, index) => {
      if (head !== earliest) return;
      resourceIds.push(resources[index]!.resourceId);
      heads[index] = cursors[index]!.next().value;
    });
    slots.push({ start: earliest, end: earliest + durationMs, resourceIds });
  }
  return slots;
}

export function checkBookable(
  input: ResourceAvailabilityInput,
  requested: Interval,
  now: number,
): BookingCheck[] {
  const conflicts: BookingCheck[] = [];
  const before = input.schedule.bufferBeforeMinutes * MS_PER_MINUTE;
  const after = input.schedule.bufferAfterMinutes * MS_PER_MINUTE;
  for (const booking of input.bookings) {
    if (booking.end <= booking.start) continue;
    if (overlaps({ start: booking.start - before, end: booking.end + after }, requested)) {
      conflicts.push({ kind: 'booking', start: booking.start, end: booking.end });
    }
  }
  for (const event of input.calendarBusy) {
    if (overlaps(event, requested))
      conflicts.push({ kind: 'calendar_event', start: event.start, end: event.end });
  }
  if (!insideSchedule(input.schedule, requested, now)) {
    conflicts.push({ kind: 'outside_schedule', start: requested.start, end: requested.end });
  }
  return conflicts.sort((a, b) => a.start - b.start || a.end - b.end);
}

function insideSchedule(schedule: Schedule, requested: Interval, now: number): boolean {
  if (requested.end <= requested.start) return false;
  const region = bookableRegion(schedule, now);
  if (requested.start < region.start || requested.end > region.end) return false;
  const working = workingIntervals(schedule, {
    start: requested.start - MS_PER_DAY,
    end: requested.end + MS_PER_DAY,
  });
  return working.some((interval) => interval.start <= requested.start && requested.end <= interval.end);
}

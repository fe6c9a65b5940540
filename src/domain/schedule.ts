import { MS_PER_DAY, MS_PER_MINUTE, parseLocalDate, weekdayIndex } from './civil-date.js';
import { clipIntervals, mergeIntervals } from './intervals.js';
import type { Interval } from './intervals.js';
import { isValidTimeZone, isValidWallTime } from './time-zones.js';
import { ZoneTimeline } from './zone-timeline.js';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];
/** Wall-clock ['HH:MM', 'HH:MM'] in the schedule's zone; the end may be '24:00' (start of the next day). */
export type WallInterval = readonly [string, string];
export type ScheduleOverride = { localDate: string; intervals: readonly WallInterval[] };
export type Schedule = {
  timeZone: string;
  weekly: Partial<Record<Weekday, readonly WallInterval[]>>;
  overrides: readonly ScheduleOverride[];
  bufferBeforeMinutes: number;
  bufferAfterMinutes: number;
  minimumNoticeMinutes: number;
  bookingHorizonDays: number;
};
export type ScheduleProblem = { field: string; message: string };

export function defaultSchedule(timeZone: string): Schedule {
  const officeHours: readonly WallInterval[] = [['09:00', '17:00']];
  return {
    timeZone,
    weekly: { mon: officeHours, tue: officeHours, wed: officeHours, thu: officeHours, fri: officeHours },
    overrides: [],
    bufferBeforeMinutes: 0,
    bufferAfterMinutes: 0,
    minimumNoticeMinutes: 0,
    bookingHorizonDays: 365,
  };
}

const LIMITS = [
  { key: 'bufferBeforeMinutes', field: 'buffer_before_minutes', min: 0, max: 1440 },
  { key: 'bufferAfterMinutes', field: 'buffer_after_minutes', min: 0, max: 1440 },
  { key: 'minimumNoticeMinutes', field: 'minimum_notice_minutes', min: 0, max: 525_600 },
  { key: 'bookingHorizonDays', field: 'booking_horizon_days', min: 1, max: 3650 },
] as const;

export function validateSchedule(schedule: Schedule): ScheduleProblem[] {
  const problems: ScheduleProblem[] = [];
  if (!isValidTimeZone(schedule.timeZone)) {
    problems.push({ field: 'time_zone', message: 'must be an IANA time zone name such as "Europe/Berlin"' });
  }
  for (const day of Object.keys(schedule.weekly)) {
    const field = `weekly.${day}`;
    if (!(WEEKDAYS as readonly string[]).includes(day)) {
      problems.push({ field, message: `unknown weekday; expected one of ${WEEKDAYS.join(', ')}` });
      continue;
    }
    validateDay(schedule.weekly[day as Weekday] ?? [], field, problems);
  }
  const seenDates = new Set<string>();
  schedule.overrides.forEach((override, index) => {
    const prefix = `overrides[${index}]`;
    if (parseLocalDate(override.localDate) === null) {
      problems.push({ field: `${prefix}.date`, message: 'must be a calendar date YYYY-MM-DD' });
    } else if (seenDates.has(override.localDate)) {
      problems.push({ field: `${prefix}.date`, message: 'duplicates an earlier override for the same date' });
    }
    seenDates.add(override.localDate);
    validateDay(override.intervals, `${prefix}.intervals`, problems);
  });
  for (const { key, field, min, max } of LIMITS) {
    const value = schedule[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push({ field, message: `must be an integer from ${min} to ${max}` });
    }
  }
  return problems;
}

function validateDay(intervals: readonly WallInterval[], field: string, problems: ScheduleProblem[]): void {
  const valid: { index: number; start: number; end: number }[] = [];
  intervals.forEach(([start, end], index) => {
    const here = `${field}[${index}]`;
    if (!isValidWallTime(start) || start === '24:00') {
      problems.push({ field: here, message: 'start must be a wall time HH:MM from 00:00 to 23:59' });
    } else if (!isValidWallTime(end)) {
      problems.push({ field: here, message: 'end must be a wall time HH:MM from 00:00 to 24:00' });
    } else if (wallMinutes(end) <= wallMinutes(start)) {
      problems.push({ field: here, message: 'end must be after start' });
    } else {
      valid.push({ index, start: wallMinutes(start), end: wallMinutes(end) });
    }
  });
  valid.sort((a, b) => a.start - b.start || a.index - b.index);
  // Compare against the furthest-reaching earlier interval, not just the previous one, so an interval
  // nested inside a long one is caught even after a shorter neighbour.
  let reach: (typeof valid)[number] | undefined;
  for (const current of valid) {
    if (reach !== undefined && current.start < reach.end) {
      const [later, earlier] = current.index > reach.index ? [current, reach] : [reach, current];
      problems.push({ field: `${field}[${later.index}]`, message: `overlaps ${field}[${earlier.index}]` });
    }
    if (reach === undefined || current.end > reach.end) reach = current;
  }
}

/** Minutes since local midnight of a validated 'HH:MM' (1440 for '24:00'). */
function wallMinutes(text: string): number {
  return Number(text.slice(0, 2)) * 60 + Number(text.slice(3, 5));
}

type DayPlan = readonly (readonly [number, number])[];

function compileDay(intervals: readonly WallInterval[], where: string): DayPlan {
  return intervals.map(([start, end]) => {
    if (!isValidWallTime(start) || !isValidWallTime(end)) {
      throw new RangeError(`invalid wall interval at ${where}: ${start}–${end}`);
    }
    return [wallMinutes(start) * MS_PER_MINUTE, wallMinutes(end) * MS_PER_MINUTE] as const;
  });
}

export function workingIntervals(schedule: Schedule, window: Interval): Interval[] {
  if (window.end <= window.start) return [];
  const weekly = WEEKDAYS.map((day) => compileDay(schedule.weekly[day] ?? [], `weekly.${day}`));
  const overrides = new Map<number, DayPlan>();
  schedule.overrides.forEach((override, index) => {
    const day = parseLocalDate(override.localDate);
    if (day === null) throw new RangeError(`invalid override date at overrides[${index}]`);
    overrides.set(day, compileDay(override.intervals, `overrides[${index}]`));
  });

  // Local days never stray more than ~26h from the UTC instants they contain, so a few days of
  // margin around the window keeps every boundary we convert inside the exact part of the timeline.
  const timeline = ZoneTimeline.covering(schedule.timeZone, {
    start: window.start - 4 * MS_PER_DAY,
    end: window.end + 4 * MS_PER_DAY,
  });
  const firstDay = timeline.localDay(window.start) - 1;
  const lastDay = timeline.localDay(window.end) + 1;
  const intervals: Interval[] = [];
  for (let day = firstDay; day <= lastDay; day++) {
    const plan = overrides.get(day) ?? weekly[weekdayIndex(day)]!;
    const midnight = day * MS_PER_DAY;
    for (const [start, end] of plan) {
      intervals.push({
        start: timeline.toInstant(midnight + start),
        end: timeline.toInstant(midnight + end),
      });
    }
  }
  return clipIntervals(mergeIntervals(intervals), window);
}

import { Temporal } from 'temporal-polyfill';
import { daysInMonth } from './civil-date.js';
import type { Interval } from './intervals.js';
import { WEEKDAYS, type Weekday } from './schedule.js';
import { formatInstant, MAX_API_YEAR } from './time-zones.js';

/**
 * The occurrences of a recurring booking (POST /bookings with `recurrence`). Pure: the first
 * occurrence is the booking as requested; every later one starts at the same local wall-clock time
 * in `timeZone` and lasts as long as the first (in elapsed time), as RFC 5545 repeats a DTSTART with
 * a TZID. A wall time that a spring-forward gap skips moves forward by the gap; one that a fall-back
 * repeats takes the earlier offset (Temporal's `compatible`, as zone-timeline.ts does for schedules).
 */

export const RECURRENCE_FREQUENCIES = ['daily', 'weekly', 'monthly'] as const;
export type RecurrenceFrequency = (typeof RECURRENCE_FREQUENCIES)[number];
export const MAX_SERIES_OCCURRENCES = 100;
export const MAX_RECURRENCE_INTERVAL = 99;

export type RecurrenceRule = {
  frequency: RecurrenceFrequency;
  /** Every `interval` days, weeks or months; 1 when left out. */
  interval?: number | undefined;
  /** How many occurrences, the first included. Exactly one of `count` and `until`. */
  count?: number | undefined;
  /** The last instant an occurrence may start at (inclusive), epoch ms. */
  until?: number | undefined;
  /** Weekly only: the days of each week; the first occurrence's weekday when left out. */
  byWeekday?: readonly string[] | undefined;
};

export type RecurrenceProblem = { field: string; message: string };

export type SeriesExpansion =
  { ok: true; occurrences: Interval[] } | { ok: false; problems: RecurrenceProblem[] };

/** The rule's problems, each naming its field under `field` (`recurrence.count`, …); [] when valid. */
export function validateRecurrence(rule: RecurrenceRule, field = 'recurrence'): RecurrenceProblem[] {
  const problems: RecurrenceProblem[] = [];
  if (!(RECURRENCE_FREQUENCIES as readonly string[]).includes(rule.frequency)) {
    problems.push({
      field: `${field}.frequency`,
      message: `must be one of ${RECURRENCE_FREQUENCIES.join(', ')}`,
    });
  }
  const interval = rule.interval ?? 1;
  if (!Number.isInteger(interval) || interval < 1 || interval > MAX_RECURRENCE_INTERVAL) {
    problems.push({
      field: `${field}.interval`,
      message: `must be an integer from 1 to ${MAX_RECURRENCE_INTERVAL}`,
    });
  }
  if ((rule.count === undefined) === (rule.until === undefined)) {
    problems.push({ field, message: 'must have exactly one of count and until' });
  }
  if (
    rule.count !== undefined &&
    (!Number.isInteger(rule.count) || rule.count < 1 || rule.count > MAX_SERIES_OCCURRENCES)
  ) {
    problems.push({
      field: `${field}.count`,
      message: `must be an integer from 1 to ${MAX_SERIES_OCCURRENCES}`,
    });
  }
  if (rule.byWeekday !== undefined) {
    const where = `${field}.by_weekday`;
    if (rule.frequency !== 'weekly') {
      problems.push({ field: where, message: 'is only for a weekly frequency' });
    } else if (rule.byWeekday.length === 0) {
      problems.push({ field: where, message: 'must name at least one weekday' });
    }
    const seen = new Set<string>();
    rule.byWeekday.forEach((day, index) => {
      if (!(WEEKDAYS as readonly string[]).includes(day)) {
        problems.push({ field: `${where}[${index}]`, message: `must be one of ${WEEKDAYS.join(', ')}` });
      } else if (seen.has(day)) {
        problems.push({ field: `${where}[${index}]`, message: `repeats ${day}` });
      }
      seen.add(day);
    });
  }
  return problems;
}

/**
 * Every occurrence of the series whose first occurrence is `first`, in order, or the problems that
 * keep the rule from giving a series: an invalid rule, an `until` before the start or one that gives
 * more than 100 occurrences, weekdays without the start's own, occurrences that would overlap each
 * other, or a series running past the year 9999.
 */
export function expandSeries(
  first: Interval,
  timeZone: string,
  rule: RecurrenceRule,
  field = 'recurrence',
): SeriesExpansion {
  const problems = validateRecurrence(rule, field);
  if (problems.length > 0) return { ok: false, problems };
  const fail = (suffix: string, message: string): SeriesExpansion => ({
    ok: false,
    problems: [{ field: suffix ? `${field}.${suffix}` : field, message }],
  });
  if (rule.until !== undefined && rule.until < first.start) {
    return fail('until', 'must not be before start_time');
  }
  const zoned = Temporal.Instant.fromEpochMilliseconds(first.start).toZonedDateTimeISO(timeZone);
  const startWeekday = WEEKDAYS[zoned.dayOfWeek - 1]!;
  if (rule.byWeekday !== undefined && !rule.byWeekday.includes(startWeekday)) {
    return fail(
      'by_weekday',
      `must include the weekday of start_time in ${timeZone} (${startWeekday}), the first occurrence`,
    );
  }

  const duration = first.end - first.start;
  const limit = rule.count ?? MAX_SERIES_OCCURRENCES + 1;
  const occurrences: Interval[] = [first];
  const wallTime = zoned.toPlainTime();
  // No date past this year can start an occurrence: the year after `until`'s, or the API's last.
  const lastYear =
    rule.until === undefined
      ? MAX_API_YEAR
      : Math.min(MAX_API_YEAR, new Date(rule.until).getUTCFullYear() + 1);
  for (const date of laterDates(zoned.toPlainDate(), rule, lastYear)) {
    if (occurrences.length >= limit) break;
    const start = date
      .toPlainDateTime(wallTime)
      .toZonedDateTime(timeZone, { disambiguation: 'compatible' }).epochMilliseconds;
    if (rule.until !== undefined && start > rule.until) break;
    const previous = occurrences[occurrences.length - 1]!;
    if (start < previous.end) {
      return fail(
        '',
        `its occurrences would overlap: each lasts longer than the time until the next (the one at ${formatInstant(start)})`,
      );
    }
    occurrences.push({ start, end: start + duration });
  }
  if (rule.count !== undefined && occurrences.length < rule.count) {
    return fail('count', `the series would run past the year ${MAX_API_YEAR}`);
  }
  if (occurrences.length > MAX_SERIES_OCCURRENCES) {
    return fail(
      'until',
      `gives more than ${MAX_SERIES_OCCURRENCES} occurrences; at most ${MAX_SERIES_OCCURRENCES}`,
    );
  }
  return { ok: true, occurrences };
}

/** The local dates after the first occurrence's, in order, up to the end of `lastYear`. */
function* laterDates(
  start: Temporal.PlainDate,
  rule: RecurrenceRule,
  lastYear: number,
): Generator<Temporal.PlainDate> {
  const interval = rule.interval ?? 1;
  if (rule.frequency === 'daily') {
    for (let step = 1; ; step++) {
      const date = start.add({ days: step * interval });
      if (date.year > lastYear) return;
      yield date;
    }
  }
  if (rule.frequency === 'weekly') {
    const days = (rule.byWeekday ?? [WEEKDAYS[start.dayOfWeek - 1]!])
      .map((day) => (WEEKDAYS as readonly string[]).indexOf(day))
      .sort((a, b) => a - b);
    // Weeks begin on Monday, as RFC 5545's default WKST; the start's own week counts as the first.
    const monday = start.subtract({ days: start.dayOfWeek - 1 });
    for (let week = 0; ; week++) {
      for (const day of days) {
        const date = monday.add({ days: week * interval * 7 + day });
        if (date.year > lastYear) return;
        if (Temporal.PlainDate.compare(date, start) > 0) yield date;
      }
    }
  }
  // Monthly on the start's day of the month; a month without that day has no occurrence (RFC 5545).
  for (let step = 1; ; step++) {
    const months = start.month - 1 + step * interval;
    const year = start.year + Math.floor(months / 12);
    const month = (months % 12) + 1;
    if (year > lastYear) return;
    if (start.day <= daysInMonth(year, month)) yield Temporal.PlainDate.from({ year, month, day: start.day });
  }
}

/** The weekdays of a rule in their canonical order (mon…sun), for storing and showing. */
export function sortedWeekdays(days: readonly string[]): Weekday[] {
  return WEEKDAYS.filter((day) => days.includes(day));
}

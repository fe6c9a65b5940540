import { Temporal } from 'temporal-polyfill';

export type RecurrencePattern = {
  type: string;
  interval: number;
  daysOfWeek?: string[];
  firstDayOfWeek?: string;
  dayOfMonth?: number;
  month?: number;
  index?: string;
};
export type RecurrenceRange = {
  type: string;
  startDate: string;
  endDate?: string;
  numberOfOccurrences?: number;
  recurrenceTimeZone?: string;
};
export type PatternedRecurrence = { pattern: RecurrencePattern; range: RecurrenceRange };

export class RecurrenceError extends Error {}

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const INDEXES = ['first', 'second', 'third', 'fourth', 'last'];
const PATTERNS = [
  'daily',
  'weekly',
  'absoluteMonthly',
  'relativeMonthly',
  'absoluteYearly',
  'relativeYearly',
];
const RANGES = ['endDate', 'noEnd', 'numbered'];
/** Upper bound on pattern periods walked, whatever the range says. */
const MAX_PERIODS = 50_000;

function fail(message: string): never {
  throw new RecurrenceError(message);
}

function oneOf(value: unknown, allowed: string[], field: string): string {
  const found =
    typeof value === 'string' ? allowed.find((a) => a.toLowerCase() === value.toLowerCase()) : null;
  return found ?? fail(`${field} must be one of ${allowed.join(', ')}`);
}

function intIn(value: unknown, min: number, max: number, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function dateOf(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) fail(`${field} must be YYYY-MM-DD`);
  try {
    return Temporal.PlainDate.from(value).toString();
  } catch {
    return fail(`${field} is not a date`);
  }
}

/**
 * Checks a patternedRecurrence the way Graph does: the fields each pattern type requires, known enum
 * values, a range start equal to the event's start date. Returns it normalised (camelCase enums).
 */
export function validateRecurrence(value: unknown, eventStartDate: string): PatternedRecurrence {
  if (typeof value !== 'object' || value === null) fail('recurrence must be an object');
  const { pattern, range } = value as { pattern?: Record<string, unknown>; range?: Record<string, unknown> };
  if (!pattern || !range) fail('recurrence needs a pattern and a range');
  const type = oneOf(pattern.type, PATTERNS, 'pattern.type');
  const out: RecurrencePattern = { type, interval: intIn(pattern.interval ?? 1, 1, 99, 'pattern.interval') };
  const needsDays = ['weekly', 'relativeMonthly', 'relativeYearly'].includes(type);
  if (needsDays) {
    const days = pattern.daysOfWeek;
    if (!Array.isArray(days) || days.length === 0) fail(`pattern.daysOfWeek is required for ${type}`);
    out.daysOfWeek = days.map((d) => oneOf(d, WEEKDAYS, 'pattern.daysOfWeek'));
  }
  if (type === 'weekly')
    out.firstDayOfWeek = oneOf(pattern.firstDayOfWeek ?? 'sunday', WEEKDAYS, 'firstDayOfWeek');
  if (type === 'absoluteMonthly' || type === 'absoluteYearly') {
    out.dayOfMonth = intIn(pattern.dayOfMonth, 1, 31, 'pattern.dayOfMonth');
  }
  if (type === 'absoluteYearly' || type === 'relativeYearly')
    out.month = intIn(pattern.month, 1, 12, 'pattern.month');
  if (type === 'relativeMonthly' || type === 'relativeYearly') {
    out.index = oneOf(pattern.index ?? 'first', INDEXES, 'pattern.index');
  }
  const rangeType = oneOf(range.type, RANGES, 'range.type');
  const startDate = dateOf(range.startDate, 'range.startDate');
  if (startDate !== eventStartDate) fail('range.startDate must be the date of the event start');
  const outRange: RecurrenceRange = { type: rangeType, startDate };
  if (rangeType === 'endDate') {
    outRange.endDate = dateOf(range.endDate, 'range.endDate');
    if (outRange.endDate < startDate) fail('range.endDate is before range.startDate');
  }
  if (rangeType === 'numbered') {
    outRange.numberOfOccurrences = intIn(range.numberOfOccurrences, 1, 999, 'range.numberOfOccurrences');
  }
  if (typeof range.recurrenceTimeZone === 'string' && range.recurrenceTimeZone !== '') {
    outRange.recurrenceTimeZone = range.recurrenceTimeZone;
  }
  return { pattern: out, range: outRange };
}

const dow = (name: string) => WEEKDAYS.indexOf(name) + 1;

function clampDay(yearMonth: Temporal.PlainYearMonth, day: number): Temporal.PlainDate {
  return yearMonth.toPlainDate({ day: Math.min(day, yearMonth.daysInMonth) });
}

/** The index-th (first..fourth, last) day of the month that falls on one of `days`. */
function relativeDay(
  yearMonth: Temporal.PlainYearMonth,
  days: string[],
  index: string,
): Temporal.PlainDate | null {
  const wanted = new Set(days.map(dow));
  const matching: Temporal.PlainDate[] = [];
  for (let day = 1; day <= yearMonth.daysInMonth; day++) {
    const date = yearMonth.toPlainDate({ day });
    if (wanted.has(date.dayOfWeek)) matching.push(date);
  }
  return (index === 'last' ? matching.at(-1) : matching[INDEXES.indexOf(index)]) ?? null;
}

/** Candidate dates of one pattern period, in order. */
function periodDates(
  pattern: RecurrencePattern,
  start: Temporal.PlainDate,
  period: number,
): Temporal.PlainDate[] {
  const step = period * pattern.interval;
  switch (pattern.type) {
    case 'daily':
      return [start.add({ days: step })];
    case 'weekly': {
      const first = dow(pattern.firstDayOfWeek ?? 'sunday');
      const weekStart = start.subtract({ days: (start.dayOfWeek - first + 7) % 7 }).add({ weeks: step });
      const days = new Set((pattern.daysOfWeek ?? []).map(dow));
      return [0, 1, 2, 3, 4, 5, 6]
        .map((i) => weekStart.add({ days: i }))
        .filter((d) => days.has(d.dayOfWeek));
    }
    case 'absoluteMonthly':
      return [clampDay(start.toPlainYearMonth().add({ months: step }), pattern.dayOfMonth ?? 1)];
    case 'relativeMonthly': {
      const found = relativeDay(
        start.toPlainYearMonth().add({ months: step }),
        pattern.daysOfWeek ?? [],
        pattern.index ?? 'first',
      );
      return found ? [found] : [];
    }
    case 'absoluteYearly': {
      const yearMonth = Temporal.PlainYearMonth.from({ year: start.year + step, month: pattern.month ?? 1 });
      return [clampDay(yearMonth, pattern.dayOfMonth ?? 1)];
    }
    default: {
      const yearMonth = Temporal.PlainYearMonth.from({ year: start.year + step, month: pattern.month ?? 1 });
      const found = relativeDay(yearMonth, pattern.daysOfWeek ?? [], pattern.index ?? 'first');
      return found ? [found] : [];
    }
  }
}

/** Occurrence dates from the range start, up to and including `until` (or the range's own end). */
export function* occurrenceDates(
  recurrence: PatternedRecurrence,
  until: Temporal.PlainDate,
): Generator<Temporal.PlainDate> {
  const { pattern, range } = recurrence;
  const start = Temporal.PlainDate.from(range.startDate);
  const end = range.endDate ? Temporal.PlainDate.from(range.endDate) : null;
  let count = 0;
  for (let period = 0; period < MAX_PERIODS; period++) {
    for (const date of periodDates(pattern, start, period)) {
      if (Temporal.PlainDate.compare(date, start) < 0) continue;
      if (end && Temporal.PlainDate.compare(date, end) > 0) return;
      if (Temporal.PlainDate.compare(date, until) > 0) return;
      if (range.numberOfOccurrences !== undefined && count >= range.numberOfOccurrences) return;
      count++;
      yield date;
    }
  }
}

import type ICAL from 'ical.js';
import { RRuleTemporal } from 'rrule-temporal';
import { Temporal } from 'temporal-polyfill';
import { MS_PER_DAY } from './time-zones.js';

export type Budget = {
  /** Occurrences still allowed to be examined. */
  remaining: number;
  deadline: number;
  exceeded: boolean;
  /** Set when it was the deadline that ran out, not the occurrences. */
  timedOut?: boolean;
};

export function overBudget(budget: Budget): boolean {
  if (budget.exceeded) return true;
  if (budget.remaining <= 0) budget.exceeded = true;
  else if (performance.now() > budget.deadline) budget.exceeded = budget.timedOut = true;
  return budget.exceeded;
}

/** A rule this expander will not read: the event is left out with a warning naming the reason. */
export class UnsupportedRule extends Error {}

/** RFC 7529 calendars this expander reads. Others are refused rather than read as Gregorian. */
const SUPPORTED_RSCALES = new Set(['GREGORIAN']);
const SKIPS = new Set(['OMIT', 'BACKWARD', 'FORWARD']);

function calendarScale(rule: ICAL.Recur): { rscale: string | null; skip: string } {
  const extra = rule as ICAL.Recur & { rscale?: unknown; skip?: unknown };
  return {
    rscale: typeof extra.rscale === 'string' ? extra.rscale.toUpperCase() : null,
    skip: typeof extra.skip === 'string' ? extra.skip.toUpperCase() : 'OMIT',
  };
}

/** Why the rule cannot be expanded as written, or null when it can. */
export function unsupportedReason(rule: ICAL.Recur): string | null {
  const { rscale, skip } = calendarScale(rule);
  if (rscale !== null && !SUPPORTED_RSCALES.has(rscale)) {
    return `RSCALE=${rscale} (RFC 7529) is not supported, so the event is left out`;
  }
  if (!SKIPS.has(skip)) return `SKIP=${skip} is not an RFC 7529 value, so the event is left out`;
  return null;
}

const PERIOD_MS: Record<string, number> = {
  SECONDLY: 1000,
  MINUTELY: 60_000,
  HOURLY: 3_600_000,
  DAILY: MS_PER_DAY,
  WEEKLY: 7 * MS_PER_DAY,
  MONTHLY: 28 * MS_PER_DAY,
  YEARLY: 365 * MS_PER_DAY,
};

/** The length of one period of the rule (its FREQ times INTERVAL), months and years at their shortest. */
export function periodMs(rule: ICAL.Recur): number {
  return (PERIOD_MS[rule.freq] ?? MS_PER_DAY) * Math.max(1, rule.interval || 1);
}

/**
 * A step of more than a century is no real schedule (FREQ=WEEKLY;INTERVAL=99999999), so such a rule
 * is read as its DTSTART alone.
 */
export function reachesBeyondDtstart(rule: ICAL.Recur): boolean {
  return periodMs(rule) <= 100 * 366 * MS_PER_DAY;
}

const WEEKDAYS = ['SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA'];
/** The longest each month can be (February in a leap year). */
const MONTH_MAX_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function numbers(rule: ICAL.Recur, part: string): number[] | undefined {
  const values = (rule.parts as Record<string, unknown[] | undefined>)[part];
  return values === undefined || values.length === 0 ? undefined : values.map(Number);
}

/**
 * True when the rule can be seen to yield nothing, so it needs no search: day filters that exclude
 * every day (BYMONTH=2;BYMONTHDAY=30), hours its steps never reach, positions past its candidates.
 */
export function neverMatches(rule: ICAL.Recur, dtstartWall: number): boolean {
  return neverOnAnyDay(rule) || neverAtAnyHour(rule, dtstartWall) || neverInAnyWeek(rule);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * FREQ=HOURLY;INTERVAL=3;BYHOUR=13 from 09:00 only ever reaches 09, 12, 15, ...: the steps reach
 * DTSTART's hour plus multiples of gcd(INTERVAL, 24).
 */
function neverAtAnyHour(rule: ICAL.Recur, dtstartWall: number): boolean {
  const hours = numbers(rule, 'BYHOUR');
  if (rule.freq !== 'HOURLY' || hours === undefined) return false;
  const step = gcd(Math.max(1, rule.interval || 1), 24);
  const first = new Date(dtstartWall).getUTCHours();
  return !hours.some((hour) => (((hour - first) % step) + step) % step === 0);
}

/** A WEEKLY rule has at most as many candidates a week as BYDAY names days: BYSETPOS past that finds none. */
function neverInAnyWeek(rule: ICAL.Recur): boolean {
  const positions = numbers(rule, 'BYSETPOS');
  if (rule.freq !== 'WEEKLY' || positions === undefined) return false;
  const days = new Set((rule.parts as Record<string, unknown[] | undefined>).BYDAY ?? ['']).size;
  const times = ['BYHOUR', 'BYMINUTE', 'BYSECOND'].reduce(
    (n, part) => n * (numbers(rule, part)?.length ?? 1),
    1,
  );
  return positions.every((p) => p === 0 || Math.abs(p) > days * times);
}

function neverOnAnyDay(rule: ICAL.Recur): boolean {
  const yearDays = numbers(rule, 'BYYEARDAY');
  if (yearDays !== undefined && yearDays.every((d) => d === 0 || Math.abs(d) > 366)) return true;
  const monthDays = numbers(rule, 'BYMONTHDAY');
  if (monthDays === undefined) return false;
  const months = (numbers(rule, 'BYMONTH') ?? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).filter(
    (m) => m >= 1 && m <= 12,
  );
  return !months.some((m) => monthDays.some((d) => d !== 0 && Math.abs(d) <= MONTH_MAX_DAYS[m - 1]!));
}

type Engine = RRuleTemporal;

/**
 * The rule without COUNT and UNTIL, iterated in wall-clock time: the zone is UTC, so wall times
 * never fall into a DST gap here, and the caller converts them with the series' own zone (RFC 5545
 * §3.3.5). COUNT and UNTIL are applied by the caller, which keeps every query an open-ended rule
 * that the engine can start near any instant.
 */
function engineFor(rule: ICAL.Recur, dtstartWall: number): Engine {
  const refused = unsupportedReason(rule);
  if (refused !== null) throw new UnsupportedRule(refused);
  const { rscale, skip } = calendarScale(rule);
  const parts = rule.parts as Record<string, unknown[] | undefined>;
  const strings = (part: string) => parts[part]?.map((v) => String(v).toUpperCase());
  const wkst = typeof rule.wkst === 'number' ? WEEKDAYS[rule.wkst - 1] : undefined;
  // SKIP=OMIT is RFC 5545's own rule for invalid dates, so only BACKWARD and FORWARD need RSCALE.
  const rscaleOptions: { rscale?: string; skip?: 'BACKWARD' | 'FORWARD' } =
    rscale !== null && skip !== 'OMIT' ? { rscale, skip: skip as 'BACKWARD' | 'FORWARD' } : {};
  const options = {
    freq: rule.freq as 'DAILY',
    interval: Math.max(1, rule.interval || 1),
    byHour: numbers(rule, 'BYHOUR'),
    byMinute: numbers(rule, 'BYMINUTE'),
    bySecond: numbers(rule, 'BYSECOND'),
    byDay: strings('BYDAY'),
    byMonth: numbers(rule, 'BYMONTH'),
    byMonthDay: numbers(rule, 'BYMONTHDAY'),
    byYearDay: numbers(rule, 'BYYEARDAY'),
    byWeekNo: numbers(rule, 'BYWEEKNO'),
    bySetPos: numbers(rule, 'BYSETPOS'),
    wkst,
    ...rscaleOptions,
  };
  // The engine takes a part given as undefined for a part present, which costs it its fast paths.
  for (const key of Object.keys(options) as (keyof typeof options)[]) {
    if (options[key] === undefined) delete options[key];
  }
  return new RRuleTemporal({
    ...options,
    dtstart: Temporal.Instant.fromEpochMilliseconds(dtstartWall).toZonedDateTimeISO('UTC'),
    tzid: 'UTC',
    maxIterations: MAX_PERIODS_PER_QUERY + 64,
    cache: false,
  });
}

/** Each query walks at most this many periods of the rule, so none can take long. */
const MAX_PERIODS_PER_QUERY = 20_000;
/** Chunks grow while they yield fewer occurrences than this and shrink above four times it. */
const TARGET_PER_CHUNK = 256;

/** The engine refuses a query that would walk past its caps; that is this series' budget spent. */
function query(engine: Engine, from: number, to: number): { epochMilliseconds: number }[] | null {
  try {
    return engine.between(new Date(from), new Date(to), true);
  } catch (error) {
    if (error instanceof Error && /^Maximum (iterations|candidate)/i.test(error.message)) return null;
    throw error;
  }
}

export type RuleBounds = {
  /** Wall time of DTSTART (as UTC epoch ms). */
  dtstart: number;
  /** Wall time of the last instant UNTIL allows, or null. */
  until: number | null;
  /** Instances starting before this wall time are not wanted (still counted for COUNT). */
  from: number;
  /** Instances starting after this wall time are not wanted. */
  to: number;
};

/**
 * Wall-clock starts of an RRULE in ascending order, within `bounds`. The work is split into
 * queries over chunks of the timeline, each bounded in periods walked, with the budget checked
 * between them; a rule that never matches ends at `to` (or at once, see neverMatches).
 */
export function* ruleStarts(rule: ICAL.Recur, bounds: RuleBounds, budget: Budget): Generator<number> {
  if (neverMatches(rule, bounds.dtstart)) return;
  const engine = engineFor(rule, bounds.dtstart);
  const count = rule.count === null || rule.count === undefined ? null : Math.max(0, rule.count);
  const last = Math.min(bounds.to, bounds.until ?? Infinity);
  // Only COUNT needs the instances before the window: they are counted, never returned.
  let cursor = count === null ? Math.max(bounds.dtstart, bounds.from) : bounds.dtstart;
  const period = periodMs(rule);
  let chunk = 32 * period;
  let seen = 0;
  while (cursor <= last) {
    if (overBudget(budget)) return;
    chunk = Math.min(chunk, MAX_PERIODS_PER_QUERY * period);
    const end = Math.min(cursor + chunk, last + 1);
    const found = query(engine, cursor, end - 1);
    if (found === null) {
      budget.exceeded = true;
      return;
    }
    for (const occurrence of found) {
      const wall = occurrence.epochMilliseconds;
      if (count !== null && seen >= count) return;
      seen++;
      if (overBudget(budget)) return;
      budget.remaining--;
      if (wall >= bounds.from) yield wall;
    }
    if (found.length < TARGET_PER_CHUNK) chunk *= 2;
    else if (found.length > 4 * TARGET_PER_CHUNK) chunk = Math.max(period, chunk / 2);
    cursor = end;
  }
}

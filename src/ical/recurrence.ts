import type ICAL from 'ical.js';
import { icalTime, MS_PER_DAY, wallMs } from './time-zones.js';

/** Thrown from inside ical.js's iterator when the caller's budget runs out. */
export class BudgetExceeded extends Error {
  constructor() {
    super('expansion budget exceeded');
  }
}

export type Budget = {
  /** Occurrences still allowed to be examined. */
  remaining: number;
  deadline: number;
  exceeded: boolean;
};

export function overBudget(budget: Budget): boolean {
  if (budget.exceeded) return true;
  if (budget.remaining <= 0 || performance.now() > budget.deadline) budget.exceeded = true;
  return budget.exceeded;
}

const DAY_FILTERS = new Set(['BYDAY', 'BYMONTH', 'BYMONTHDAY']);
const WEEK_FILTERS = new Set(['BYDAY']);

/**
 * ical.js always iterates from DTSTART, so a daily series begun in 1990 costs every day since then.
 * For DAILY rules whose parts only filter days, and WEEKLY rules with at most BYDAY, the set of
 * candidate days is a lattice of INTERVAL days (or weeks) anchored at DTSTART: moving DTSTART by whole
 * lattice steps changes nothing from the new start on. COUNT counts from the original DTSTART, so
 * rules with COUNT are never moved.
 */
export function skipAhead(rule: ICAL.Recur, dtstartWall: number, targetWall: number): number {
  if (rule.count !== null && rule.count !== undefined) return dtstartWall;
  const parts = Object.keys(rule.parts ?? {});
  let step: number;
  if (rule.freq === 'DAILY' && parts.every((p) => DAY_FILTERS.has(p))) step = MS_PER_DAY;
  else if (rule.freq === 'WEEKLY' && parts.every((p) => WEEK_FILTERS.has(p))) step = 7 * MS_PER_DAY;
  else return dtstartWall;
  step *= Math.max(1, rule.interval || 1);
  const steps = Math.floor((targetWall - dtstartWall) / step);
  return steps > 0 ? dtstartWall + steps * step : dtstartWall;
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

/**
 * ical.js normalises a date moved by INTERVAL periods one calendar step at a time, so an INTERVAL
 * reaching thousands of years (FREQ=WEEKLY;INTERVAL=99999999) takes minutes inside a single next().
 * A step of more than a century is no real schedule, so such a rule is read as its DTSTART alone.
 */
export function reachesBeyondDtstart(rule: ICAL.Recur): boolean {
  const period = PERIOD_MS[rule.freq] ?? MS_PER_DAY;
  return Math.max(1, rule.interval || 1) * period <= 100 * 366 * MS_PER_DAY;
}

type GuardedIterator = ICAL.RecurIterator & { check_contracting_rules: () => boolean };

/**
 * Wall-clock starts of an RRULE. ical.js's iterator can spin inside one next() call on a rule that
 * never matches (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30), so the budget is also checked from inside it,
 * through the one method every pass of that inner loop calls.
 */
export function* ruleStarts(
  rule: ICAL.Recur,
  dtstartWall: number,
  isDate: boolean,
  budget: Budget,
): Generator<number> {
  const iterator = rule.iterator(icalTime(dtstartWall, isDate)) as GuardedIterator;
  const check = iterator.check_contracting_rules.bind(iterator);
  // Checked on every pass: with a large INTERVAL one pass can itself take milliseconds.
  iterator.check_contracting_rules = () => {
    if (performance.now() > budget.deadline) throw new BudgetExceeded();
    return check();
  };
  for (;;) {
    if (overBudget(budget)) return;
    const next = iterator.next() as ICAL.Time | null;
    if (next === null || iterator.completed) return;
    budget.remaining--;
    yield wallMs(next.year, next.month, next.day, next.hour, next.minute, next.second);
  }
}

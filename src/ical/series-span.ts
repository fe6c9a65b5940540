import type ICAL from 'ical.js';
import { type Budget, periodMs, ruleStarts } from './recurrence.js';
import { MS_PER_DAY } from './time-zones.js';

/** A rule with a COUNT above this is not walked to find its end: it is read as having none. */
export const SPAN_MAX_COUNT = 1_000;
/**
 * A rule is walked at most this many of its periods, and never more than two centuries, looking for
 * its COUNT-th start; one whose starts are sparser is read as having no end. With the count, this
 * bounds the work by what the rule says, not by the time it happens to take.
 */
const SPAN_MAX_PERIODS = 100_000;
const SPAN_MAX_WALL_MS = 200 * 366 * MS_PER_DAY;
/** Only a safety net: the bounds above keep a walk within a few ms. */
const SPAN_WALK_MS = 1_000;

/**
 * Wall time of the last start an RRULE can give (its DTSTART and UNTIL as wall times of the series),
 * or null when it has no last one (neither COUNT nor UNTIL) or finding it would take more than a
 * short, bounded walk. Without COUNT, UNTIL is that bound; with COUNT, the rule is walked to its end.
 */
export function lastRuleStart(rule: ICAL.Recur, dtstart: number, until: number | null): number | null {
  const count = rule.count === null || rule.count === undefined ? null : rule.count;
  if (count === null || count > SPAN_MAX_COUNT) return until;
  const horizon = dtstart + Math.min(SPAN_MAX_WALL_MS, SPAN_MAX_PERIODS * periodMs(rule));
  // One more than COUNT: the walk stops on seeing the start past COUNT, before spending it.
  const budget: Budget = {
    remaining: count + 1,
    deadline: performance.now() + SPAN_WALK_MS,
    exceeded: false,
  };
  let last = dtstart;
  let seen = 0;
  try {
    const to = until === null ? horizon : Math.min(until, horizon);
    for (const wall of ruleStarts(rule, { dtstart, until, from: dtstart, to }, budget)) {
      last = Math.max(last, wall);
      seen++;
    }
  } catch {
    return until;
  }
  if (budget.exceeded) return until;
  // Fewer than COUNT starts before a horizon short of UNTIL: more may come after it.
  if (seen < count && (until === null || until > horizon)) return until;
  return last;
}

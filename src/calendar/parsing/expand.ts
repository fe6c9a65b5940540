import type { Interval } from '../../domain/index.js';
import type { RemoteEvent } from '../port/provider.js';
import {
  DEFAULT_TIME_BUDGET_MS,
  expandObject,
  MAX_OCCURRENCES_PER_SERIES,
  type ExpandResult,
  type Occurrence,
} from '../../ical/expand-object.js';

/*
 * Reading a calendar's objects into occurrences, within what one sync may spend. Pure: it runs on the
 * parser's worker threads (parsing/tasks.ts) as well as in the calling thread.
 */

const DAY_MS = 86_400_000;
/** Occurrences of recurring series are kept for this span around now; other windows expand on demand. */
export const EXPANDED_PAST_MS = 31 * DAY_MS;
export const EXPANDED_FUTURE_MS = 400 * DAY_MS;
/** Re-expand every series once the stored span has less than this left ahead. */
export const REEXPAND_MARGIN_MS = 7 * DAY_MS;
/** A single event is looked for across this span, wide enough for any real calendar. */
const SINGLE_EVENT_WINDOW = { start: Date.UTC(1900, 0, 1), end: Date.UTC(2200, 0, 1) };

export function expansionWindow(now: number): Interval {
  return { start: now - EXPANDED_PAST_MS, end: now + EXPANDED_FUTURE_MS };
}

export type StoredObject = {
  remoteId: string;
  etag: string | null;
  ics: string;
  result: ExpandResult;
};

/** Parses and expands one object: recurring series within `window`, a single event wherever it is. */
export function expandForStorage(
  ics: string,
  window: Interval,
  zone: string,
  limits: { maxOccurrences?: number; timeBudgetMs?: number } = {},
): ExpandResult {
  const first = expandObject(ics, window, { floatingZone: zone, ...limits });
  if (!first.ok || first.summary.recurring || first.occurrences.length > 0) return first;
  // A single event outside the window: its one occurrence is the master itself, no second parse.
  const master = first.summary.master;
  if (!master || master.startsAt < SINGLE_EVENT_WINDOW.start || master.startsAt >= SINGLE_EVENT_WINDOW.end) {
    return first;
  }
  const occurrence: Occurrence = {
    startsAt: master.startsAt,
    endsAt: master.endsAt,
    allDay: master.allDay,
    title: first.summary.title,
    status: master.status,
    transparency: master.transparency,
    recurrenceId: null,
  };
  return { ...first, occurrences: [occurrence] };
}

export function withIcs(
  remoteId: string,
  etag: string | null,
  ics: string,
  result: ExpandResult,
): StoredObject {
  return { remoteId, etag, ics, result };
}

export function fromRemote(event: RemoteEvent, window: Interval, zone: string): StoredObject {
  return withIcs(event.remoteId, event.etag, event.ics, expandForStorage(event.ics, window, zone));
}

/** Stored with a series whose expansion ran out of time, so that it is not silently short. */
export const TIMED_OUT_WARNING = `expanding the series took longer than ${DEFAULT_TIME_BUDGET_MS} ms, so occurrences after that point are missing`;

/** What one sync may spend on a calendar as a whole, on top of the limits per object. */
export const CALENDAR_LIMITS = {
  /** Occurrences stored per sync of a connection. */
  occurrences: 200_000,
  /** Time spent parsing and expanding, in ms. */
  expandMs: 10_000,
  /** Objects read. */
  objects: 50_000,
  /** iCalendar text read, in UTF-16 code units (about bytes for the ASCII of real calendars). */
  chars: 64 * 1024 * 1024,
};

export type CalendarLimits = typeof CALENDAR_LIMITS;

/** The part of the calendar limits a sync has left, and what was left out for want of it. */
export type CalendarBudget = {
  occurrences: number;
  expandMs: number;
  objects: number;
  chars: number;
  readonly limits: CalendarLimits;
  /** Objects left out whole (time, object or size budget spent); read again on a later sync. */
  skipped: number;
  /** Occurrences not stored because the occurrence budget was spent. */
  occurrencesCut: boolean;
};

export function calendarBudget(limits: CalendarLimits = CALENDAR_LIMITS): CalendarBudget {
  return { ...limits, limits, skipped: 0, occurrencesCut: false };
}

/**
 * One object of a sync within its budget. When occurrences run out, the object is kept with those
 * that were left; when time, objects or text run out, it is left out (null) and, not being stored,
 * read again by a later sync.
 */
export function expandOneWithinBudget(
  event: RemoteEvent,
  window: Interval,
  zone: string,
  budget: CalendarBudget,
): StoredObject | null {
  if (budget.expandMs <= 0 || budget.objects <= 0 || budget.chars < event.ics.length) {
    budget.skipped++;
    return null;
  }
  budget.objects--;
  budget.chars -= event.ics.length;
  const started = performance.now();
  const result = expandObjectWithin(event.ics, window, zone, budget);
  budget.expandMs -= performance.now() - started;
  return withIcs(event.remoteId, event.etag, event.ics, result);
}

function expandObjectWithin(
  ics: string,
  window: Interval,
  zone: string,
  budget: CalendarBudget,
): ExpandResult {
  const started = performance.now();
  /** The calendar's expansion time left, counting this object's attempts so far. */
  const timeLeft = () => budget.expandMs - (performance.now() - started);
  const limits = () => ({
    // The per-series count includes DTSTART seen twice (as itself and as the rule's first), so one more.
    maxOccurrences: Math.max(1, Math.min(MAX_OCCURRENCES_PER_SERIES, budget.occurrences + 1)),
    timeBudgetMs: Math.max(1, Math.min(DEFAULT_TIME_BUDGET_MS, timeLeft())),
  });
  let result = expandForStorage(ics, window, zone, limits());
  // Cut short by the clock, not by its size: a thread's first, cold expansion on a busy machine can
  // take that long for a plain series. Once more, warm; if the clock runs out again, it is said.
  if (result.ok && result.timedOut && timeLeft() > 0) {
    result = expandForStorage(ics, window, zone, limits());
  }
  if (!result.ok) return result;
  if (result.timedOut) result = { ...result, warnings: [...(result.warnings ?? []), TIMED_OUT_WARNING] };
  if (result.occurrences.length > budget.occurrences) {
    budget.occurrencesCut = true;
    const occurrences = result.occurrences.slice(0, Math.max(0, budget.occurrences));
    budget.occurrences = 0;
    return { ...result, occurrences, truncated: true };
  }
  budget.occurrences -= result.occurrences.length;
  if (budget.occurrences <= 0 && result.truncated) budget.occurrencesCut = true;
  return result;
}

/** What a sync that ran out of budget tells the user, or null when it did not. */
export function budgetWarning(budget: CalendarBudget): string | null {
  const parts: string[] = [];
  if (budget.occurrencesCut) {
    const n = budget.limits.occurrences;
    parts.push(
      `the calendar has more than ${n} occurrences in the stored span; only the first ${n} are used`,
    );
  }
  if (budget.skipped > 0) {
    parts.push(
      `${budget.skipped} event${budget.skipped === 1 ? ' was' : 's were'} not read because the calendar ` +
        `exceeds the limits of one synchronization (${budget.limits.expandMs / 1000} s of reading, ` +
        `${budget.limits.objects} events); they are read on a later synchronization`,
    );
  }
  return parts.length === 0 ? null : parts.join('; ');
}

import type ICAL from 'ical.js';
import type { EventData, Timing } from './event-reader.js';
import { newer, ObjectReader } from './event-reader.js';
import { checkSize, describeError, ICS_MAX_BYTES, normaliseText, parseCalendars } from './parse-text.js';
import type { Budget } from './recurrence.js';
import { overBudget, reachesBeyondDtstart, ruleStarts, unsupportedReason } from './recurrence.js';
import { lastRuleStart } from './series-span.js';
import { MS_PER_DAY } from './time-zones.js';
import { dateKey, instantText, parseDateValue, parseDuration, rawType, rawValues } from './values.js';

export const MAX_OCCURRENCES_PER_SERIES = 10_000;

export type OccurrenceStatus = 'confirmed' | 'tentative' | 'cancelled';
export type Transparency = 'opaque' | 'transparent';

export type Occurrence = {
  startsAt: number;
  endsAt: number;
  allDay: boolean;
  title: string | null;
  status: OccurrenceStatus;
  transparency: Transparency;
  /** The occurrence's original start (RFC 3339 UTC, or YYYY-MM-DD for all-day); null when not recurring. */
  recurrenceId: string | null;
};

export type ObjectSummary = {
  uid: string | null;
  /** X-SCHED-BOOKING-ID: set on the events Sched writes for bookings. */
  bookingId: string | null;
  title: string | null;
  recurring: boolean;
  sequence: number;
  /** LAST-MODIFIED (or DTSTAMP) of the master, epoch ms. */
  lastModified: number | null;
  /** The master's own time and state; for a booking's event this is what the sync compares. */
  master: {
    startsAt: number;
    endsAt: number;
    allDay: boolean;
    status: OccurrenceStatus;
    transparency: Transparency;
  } | null;
};

/**
 * The span a series' occurrences reach, overrides, RDATEs and durations included, as epoch ms with
 * a margin of two days each side: every occurrence starts at or after `from` and ends at or before
 * `until`. Null at an end the series does not have (an RRULE without COUNT or UNTIL), or that could
 * not be found within bounded work; null is always the safe reading.
 */
export type SeriesSpan = { from: number | null; until: number | null };

export type ExpandOptions = {
  /** Zone for floating times and all-day dates (the resource's zone). */
  floatingZone: string;
  maxOccurrences?: number;
  /** Wall-clock budget for this object, in ms. */
  timeBudgetMs?: number;
  /** Also find the span of the series (`span` of the result); on unless false. */
  span?: boolean;
};

export type ExpandResult =
  | {
      ok: true;
      summary: ObjectSummary;
      occurrences: Occurrence[];
      truncated: boolean;
      /** Cut short by the time budget rather than by the number of occurrences. */
      timedOut?: boolean;
      /** Problems that did not stop the expansion (unknown TZIDs, duplicate components, ...). */
      warnings?: string[];
      /** Where the object's occurrences can fall at all, whatever the window (unless options.span is false). */
      span?: SeriesSpan;
    }
  | { ok: false; error: string };

export const DEFAULT_TIME_BUDGET_MS = 250;

/** Offsets and durations reach at most this far from a window edge when deciding what overlaps it. */
const RANGE_MARGIN_MS = 400 * MS_PER_DAY;
/** A series' span is widened this much each side: wall times and instants differ by less than a day. */
const SPAN_MARGIN_MS = 2 * MS_PER_DAY;

type Window = { start: number; end: number };
type Group = { master: EventData | null; overrides: EventData[] };

/**
 * Parses one object (a VCALENDAR with a master and overrides, as stored per remote object) and
 * expands the occurrences that overlap [start, end): RRULE, RDATE, EXDATE, RECURRENCE-ID overrides,
 * cancelled instances. Bounded by maxOccurrences and the time budget (truncated: true).
 */
export function expandObject(ics: string, window: Window, options: ExpandOptions): ExpandResult {
  const started = performance.now();
  try {
    if (!Number.isFinite(window.start) || !Number.isFinite(window.end) || window.end < window.start) {
      return { ok: false, error: 'the window must be two finite instants, start before end' };
    }
    checkSize(ics, ICS_MAX_BYTES);
    const calendars = parseCalendars(normaliseText(ics));
    const range = { start: window.start - RANGE_MARGIN_MS, end: window.end + RANGE_MARGIN_MS };
    const reader = new ObjectReader(calendars, options.floatingZone, range);
    const deadline = started + (options.timeBudgetMs ?? DEFAULT_TIME_BUDGET_MS);
    const groups = groupEvents(calendars, reader);
    if (groups.length === 0) return { ok: false, error: 'no VEVENT found' };
    const occurrences: Occurrence[] = [];
    let truncated = false;
    let timedOut = false;
    const spans: SeriesSpan[] = [];
    for (const group of groups) {
      const budget: Budget = {
        remaining: options.maxOccurrences ?? MAX_OCCURRENCES_PER_SERIES,
        deadline,
        exceeded: false,
      };
      const expander = new SeriesExpander(reader, group, window, budget, occurrences);
      expander.run();
      truncated ||= budget.exceeded;
      timedOut ||= budget.timedOut === true;
      if (options.span !== false) spans.push(expander.span());
    }
    occurrences.sort((a, b) => a.startsAt - b.startsAt || a.endsAt - b.endsAt);
    const result = {
      summary: summarize(reader, groups[0]!),
      occurrences,
      truncated,
      ...(timedOut ? { timedOut } : {}),
      ...(options.span !== false ? { span: unionOf(spans) } : {}),
    };
    return { ok: true, ...result, ...(reader.warnings.length > 0 ? { warnings: reader.warnings } : {}) };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
}

/** The span covering every group's; an end any of them lacks is lacking. */
function unionOf(spans: readonly SeriesSpan[]): SeriesSpan {
  const ends = (pick: (span: SeriesSpan) => number | null) => spans.map(pick);
  const from = ends((span) => span.from);
  const until = ends((span) => span.until);
  return {
    from: from.some((at) => at === null) ? null : Math.min(...(from as number[])),
    until: until.some((at) => at === null) ? null : Math.max(...(until as number[])),
  };
}

function groupEvents(calendars: ICAL.Component[], reader: ObjectReader): Group[] {
  const groups = new Map<string, Group>();
  for (const calendar of calendars) {
    for (const component of calendar.getAllSubcomponents('vevent')) {
      let event: EventData;
      try {
        event = reader.readEvent(component);
      } catch (error) {
        const uid = component.getFirstPropertyValue('uid');
        throw new Error(`VEVENT ${typeof uid === 'string' ? `"${uid}" ` : ''}${describeError(error)}`);
      }
      const key = event.uid ?? '';
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { master: null, overrides: [] }));
      if (event.recurrenceId === null) {
        if (group.master !== null) reader.warnings.push(`UID "${key}": several masters, the newest is used`);
        group.master = group.master === null ? event : newer(group.master, event);
      } else {
        group.overrides.push(event);
      }
    }
  }
  return [...groups.values()];
}

function summarize(reader: ObjectReader, group: Group): ObjectSummary {
  const master = group.master;
  const lead = master ?? group.overrides[0]!;
  const bookingId = lead.component.getFirstPropertyValue('x-sched-booking-id');
  let masterTimes: ObjectSummary['master'] = null;
  if (master?.start) {
    const startsAt = reader.instant(master.start);
    masterTimes = {
      startsAt,
      endsAt: endOf(reader, master, null, master.start.wall, startsAt),
      allDay: master.start.isDate,
      status: master.status ?? 'confirmed',
      transparency: master.transparency ?? 'opaque',
    };
  }
  // An EXDATE makes even a lone DTSTART a recurrence set (RFC 5545 §3.8.5.1): one that can be empty,
  // so the master alone is not its occurrence.
  const recurring =
    master === null ||
    group.overrides.length > 0 ||
    master.component.hasProperty('rrule') ||
    master.component.hasProperty('rdate') ||
    master.component.hasProperty('exdate');
  return {
    uid: lead.uid,
    bookingId: typeof bookingId === 'string' && bookingId !== '' ? bookingId : null,
    title: lead.title,
    recurring,
    sequence: lead.sequence,
    lastModified: reader.lastModified(lead.component),
    master: masterTimes,
  };
}

/**
 * End of an occurrence starting at `wall`/`startsAt`. All-day events span whole local days (at least
 * one). A DURATION's days are nominal, so they follow the wall clock across DST; a DTEND gives the
 * exact length of the master, which every occurrence keeps.
 */
function endOf(
  reader: ObjectReader,
  event: EventData,
  fallback: EventData | null,
  wall: number,
  startsAt: number,
): number {
  const own = event.start !== null && (event.end !== null || event.duration !== null);
  const source = own || fallback === null || fallback.start === null ? event : fallback;
  const start = source.start;
  if (start?.isDate ?? event.start?.isDate ?? false) {
    let days = 1;
    if (source.duration !== null) days = source.duration.days + Math.ceil(source.duration.ms / MS_PER_DAY);
    else if (source.end !== null && start !== null)
      days = Math.ceil((source.end.wall - start.wall) / MS_PER_DAY);
    return reader.clock.toInstant(wall + Math.max(1, days) * MS_PER_DAY, reader.floating);
  }
  if (source.duration !== null) {
    const { days, ms } = source.duration;
    const base = days === 0 ? startsAt : reader.clock.toInstant(wall + days * MS_PER_DAY, timedZone(event));
    return Math.max(startsAt, base + ms);
  }
  if (source.end !== null && start !== null) {
    return startsAt + Math.max(0, reader.instant(source.end) - reader.instant(start));
  }
  return startsAt;
}

function timedZone(event: EventData): Timing['zone'] {
  return (event.start ?? event.recurrenceId)!.zone;
}

class SeriesExpander {
  private readonly master: EventData | null;
  private readonly allDay: boolean;
  private readonly exInstants = new Set<number>();
  private readonly exDates = new Set<string>();
  private readonly overriddenInstants = new Set<number>();
  private readonly overriddenDates = new Set<string>();
  private readonly emitted = new Set<string | number>();
  private refused = false;
  /** Earliest start and latest end of the occurrences met so far, whether in the window or not. */
  private earliest = Infinity;
  private latest = -Infinity;

  constructor(
    private readonly reader: ObjectReader,
    private readonly group: Group,
    private readonly window: Window,
    private readonly budget: Budget,
    private readonly out: Occurrence[],
  ) {
    this.master = group.master;
    this.allDay = this.master?.start?.isDate ?? false;
  }

  run(): void {
    const overrides = this.indexOverrides();
    const master = this.master;
    if (master !== null) {
      if (master.start === null) throw new Error(`VEVENT "${master.uid ?? ''}" has no DTSTART`);
      this.readExdates(master.component);
      this.expandMaster(master, master.start);
      if (this.refused) return;
    }
    for (const override of overrides) {
      if (overBudget(this.budget)) return;
      this.budget.remaining--;
      this.emitOverride(override);
    }
  }

  /**
   * Where the series' occurrences can fall (call after run()). RDATEs and overrides were all met by
   * run(), in the window or not; the rules are read from COUNT and UNTIL, so the walk is short.
   */
  span(): SeriesSpan {
    if (this.refused || this.budget.exceeded) return { from: null, until: null };
    const master = this.master;
    let bounded = true;
    if (master?.start) {
      const start = master.start;
      const startsAt = this.reader.instant(start);
      const length = this.masterLength(master, start, startsAt);
      for (const property of master.component.getAllProperties('rrule')) {
        const rule = property.getFirstValue() as ICAL.Recur;
        if (!reachesBeyondDtstart(rule)) continue;
        const last = lastRuleStart(rule, start.wall, this.untilWall(property, start));
        // A rule's starts are wall times of DTSTART's zone, never before DTSTART: the margin covers
        // the zone's offset and a nominal duration across a DST change.
        if (last === null) bounded = false;
        else this.meet(startsAt, Math.max(startsAt, last + length));
      }
    }
    if (!(this.earliest <= this.latest) || !Number.isFinite(this.earliest + this.latest)) {
      return { from: null, until: null };
    }
    return {
      from: this.earliest - SPAN_MARGIN_MS,
      until: bounded ? this.latest + SPAN_MARGIN_MS : null,
    };
  }

  private meet(startsAt: number, endsAt: number): void {
    if (startsAt < this.earliest) this.earliest = startsAt;
    if (endsAt > this.latest) this.latest = endsAt;
  }

  private dateOf(timing: Timing): string {
    // Exchange writes RECURRENCE-ID and EXDATE of all-day series as DATE-TIMEs at local midnight.
    if (timing.utc)
      return dateKey(this.reader.clock.toWall(this.reader.instant(timing), this.reader.floating));
    return dateKey(timing.wall);
  }

  private indexOverrides(): EventData[] {
    const byKey = new Map<string, EventData>();
    for (const override of this.group.overrides) {
      const rid = override.recurrenceId!;
      const key = rid.isDate || this.allDay ? this.dateOf(rid) : String(this.reader.instant(rid));
      const seen = byKey.get(key);
      byKey.set(key, seen === undefined ? override : newer(seen, override));
      if (rid.isDate || this.allDay) this.overriddenDates.add(this.dateOf(rid));
      else this.overriddenInstants.add(this.reader.instant(rid));
      const range = override.component.getFirstProperty('recurrence-id')?.getParameter('range');
      if (typeof range === 'string' && range.toUpperCase() === 'THISANDFUTURE') {
        this.reader.warnings.push(
          `UID "${override.uid ?? ''}": RANGE=THISANDFUTURE applied to one instance only`,
        );
      }
    }
    return [...byKey.values()];
  }

  private readExdates(component: ICAL.Component): void {
    for (const property of component.getAllProperties('exdate')) {
      for (const value of rawValues(property)) {
        if (typeof value !== 'string') continue;
        const timing = this.reader.tryTimingOf(value, property, 'EXDATE');
        if (timing === null) continue;
        if (timing.isDate || this.allDay) this.exDates.add(this.dateOf(timing));
        else this.exInstants.add(this.reader.instant(timing));
      }
    }
  }

  private expandMaster(master: EventData, start: Timing): void {
    const rules = master.component.getAllProperties('rrule');
    const rdates = master.component.getAllProperties('rdate');
    const recurring = rules.length > 0 || rdates.length > 0;
    const startsAt = this.reader.instant(start);
    const refused = this.refusedRule(rules);
    if (refused !== null) {
      this.reader.warnings.push(`UID "${master.uid ?? ''}": ${refused}`);
      this.refused = true;
      return;
    }
    this.budget.remaining--;
    this.consider(start.wall, startsAt, null, recurring);
    const length = this.masterLength(master, start, startsAt);
    // Wall time and instant differ by less than a day, so anything ending this early cannot reach
    // the window and needs no conversion.
    const tooEarly = this.window.start - length - 2 * MS_PER_DAY;
    const tooLate = this.window.end + 2 * MS_PER_DAY;
    for (const property of rules) {
      const rule = property.getFirstValue() as ICAL.Recur;
      if (!reachesBeyondDtstart(rule)) {
        this.reader.warnings.push(`RRULE ${rule.toString()}: INTERVAL too large, only DTSTART is used`);
        continue;
      }
      const bounds = {
        dtstart: start.wall,
        until: this.untilWall(property, start),
        from: tooEarly,
        to: tooLate,
      };
      try {
        for (const wall of ruleStarts(rule, bounds, this.budget)) {
          const instant = this.reader.clock.toInstant(wall, start.zone);
          if (instant >= this.window.end) break;
          this.consider(wall, instant, null, true);
        }
      } catch (error) {
        throw new Error(`RRULE ${rule.toString()}: ${describeError(error)}`);
      }
      if (this.budget.exceeded) return;
    }
    for (const property of rdates) this.expandRdate(property, start);
  }

  /**
   * A series whose rule cannot be read as written (a non-Gregorian RSCALE) is left out whole, with
   * its overrides: expanding it as Gregorian would invent times that are not the event's.
   */
  private refusedRule(rules: ICAL.Property[]): string | null {
    for (const property of rules) {
      const reason = unsupportedReason(property.getFirstValue() as ICAL.Recur);
      if (reason !== null) return reason;
    }
    return null;
  }

  private masterLength(master: EventData, start: Timing, startsAt: number): number {
    return endOf(this.reader, master, null, start.wall, startsAt) - startsAt;
  }

  private expandRdate(property: ICAL.Property, start: Timing): void {
    const isPeriod = rawType(property) === 'period';
    for (const value of rawValues(property)) {
      if (overBudget(this.budget)) return;
      this.budget.remaining--;
      const first = isPeriod && Array.isArray(value) ? (value[0] as unknown) : value;
      if (typeof first !== 'string') continue;
      const timing = this.reader.tryTimingOf(first, property, 'RDATE');
      if (timing === null) continue;
      // An all-day series' RDATE is a day, whatever form the producer used.
      const wall = start.isDate ? Date.parse(this.dateOf(timing)) : timing.wall;
      const instant = start.isDate
        ? this.reader.clock.toInstant(wall, this.reader.floating)
        : this.reader.instant(timing);
      const second: unknown = isPeriod && Array.isArray(value) ? value[1] : undefined;
      this.consider(wall, instant, this.periodEnd(instant, second, property), true);
    }
  }

  /** The end a PERIOD value gives (an end or a duration), or null to use the series' own length. */
  private periodEnd(startsAt: number, second: unknown, property: ICAL.Property): number | null {
    if (typeof second !== 'string') return null;
    if (/^[+-]?P/.test(second)) {
      const { days, ms } = parseDuration(second, 'RDATE');
      return startsAt + Math.max(0, days * MS_PER_DAY + ms);
    }
    const end = this.reader.tryTimingOf(second, property, 'RDATE');
    return end === null ? null : Math.max(startsAt, this.reader.instant(end));
  }

  /**
   * UNTIL as a wall time of the series: a UTC UNTIL is moved to the series' zone, and a DATE UNTIL on
   * a timed series includes that whole day.
   */
  private untilWall(property: ICAL.Property, start: Timing): number | null {
    const raw = (rawValues(property)[0] as { until?: unknown } | undefined)?.until;
    if (typeof raw !== 'string') return null;
    const until = parseDateValue(raw, 'RRULE UNTIL');
    let wall = until.wall;
    if (until.utc) wall = this.reader.clock.toWall(wall, start.zone);
    if (until.isDate && !start.isDate) wall += MS_PER_DAY - 1000;
    return wall;
  }

  private consider(wall: number, startsAt: number, end: number | null, recurring: boolean): void {
    const dated = this.allDay || this.exDates.size > 0 || this.overriddenDates.size > 0;
    const day = dated ? dateKey(wall) : '';
    const key = this.allDay ? day : startsAt;
    if (this.emitted.has(key)) return;
    this.emitted.add(key);
    if (this.exDates.has(day) || this.overriddenDates.has(day)) return;
    if (!this.allDay && (this.exInstants.has(startsAt) || this.overriddenInstants.has(startsAt))) return;
    const master = this.master!;
    const endsAt = end ?? endOf(this.reader, master, null, wall, startsAt);
    this.meet(startsAt, endsAt);
    if (!this.overlaps(startsAt, endsAt)) return;
    const recurrenceId = recurring ? (this.allDay ? day : instantText(startsAt)) : null;
    this.push(master, startsAt, endsAt, this.allDay, recurrenceId);
  }

  private overlaps(startsAt: number, endsAt: number): boolean {
    const { start, end } = this.window;
    return startsAt < end && (endsAt > start || (endsAt === startsAt && startsAt >= start));
  }

  private emitOverride(override: EventData): void {
    const rid = override.recurrenceId!;
    const start = override.start ?? rid;
    const startsAt = this.reader.instant(start);
    const endsAt = endOf(this.reader, override, this.master, start.wall, startsAt);
    this.meet(startsAt, endsAt);
    const recurrenceId = rid.isDate || this.allDay ? this.dateOf(rid) : instantText(this.reader.instant(rid));
    this.push(override, startsAt, endsAt, start.isDate, recurrenceId);
  }

  private push(
    event: EventData,
    startsAt: number,
    endsAt: number,
    allDay: boolean,
    recurrenceId: string | null,
  ) {
    if (!this.overlaps(startsAt, endsAt)) return;
    const master = this.master;
    this.out.push({
      startsAt,
      endsAt,
      allDay,
      title: event.title ?? master?.title ?? null,
      status: event.status ?? master?.status ?? 'confirmed',
      transparency: event.transparency ?? master?.transparency ?? 'opaque',
      recurrenceId,
    });
  }
}

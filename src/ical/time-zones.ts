import ICAL from 'ical.js';
import { Temporal } from 'temporal-polyfill';
import { ZoneTimeline } from '../domain/zone-timeline.js';
import { displayNameCandidates, splitDisplayName, windowsIdToIana } from './windows-zones.js';

/**
 * How a TZID is turned into instants. ical.js is never asked to do it for a name: it treats a TZID it
 * has no VTIMEZONE for as floating and then converts with the host's zone, so the process TZ would
 * leak into the results. An IANA zone goes through Temporal; only a VTIMEZONE whose name maps to no
 * IANA zone ("Customized Time Zone 1") is converted by ical.js from its own rules.
 */
export type Zone = { kind: 'iana'; id: string } | { kind: 'vtimezone'; tzid: string; tz: ICAL.Timezone };

const CACHE_LIMIT = 2048;
const resolved = new Map<string, string | null>();

function remember(name: string, zone: string | null): string | null {
  // Names come from remote input, so the cache is bounded; eviction is insertion order.
  if (resolved.size >= CACHE_LIMIT) resolved.delete(resolved.keys().next().value!);
  resolved.set(name, zone);
  return zone;
}

const canonical = new Map<string, string>();

/** The canonical IANA id Temporal knows the name by, or null. */
export function ianaZone(name: string): string | null {
  const known = canonical.get(name);
  if (known !== undefined) return known;
  if (name === '' || name.length > 100) return null;
  let id: string;
  try {
    id = Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(name).timeZoneId;
  } catch {
    return null;
  }
  if (canonical.size >= CACHE_LIMIT) canonical.delete(canonical.keys().next().value!);
  canonical.set(name, id);
  return id;
}

function standardOffsetMinutes(zone: string): number {
  const offset = (iso: string) =>
    Temporal.Instant.from(iso).toZonedDateTimeISO(zone).offsetNanoseconds / 60_000_000_000;
  return Math.min(offset('2026-01-15T12:00:00Z'), offset('2026-07-15T12:00:00Z'));
}

function resolveUncached(raw: string): string | null {
  const name = raw.trim().replace(/^"(.*)"$/, '$1');
  const direct = ianaZone(name);
  // Offsets are a separate, weaker fallback (offsetZone); bare "+01:00" is not a place.
  if (direct !== null && !/^[+-]/.test(direct)) return direct;
  // Globally unique TZIDs (RFC 5545 §3.2.19) put a prefix before the Olson name:
  // "/Europe/Stockholm", "/freeassociation.sourceforge.net/Tzfile/Europe/London",
  // "/softwarestudio.org/Olson_20011030_5/America/New_York", "posix/Europe/Vaduz".
  const segments = name.split('/').filter((s) => s !== '');
  for (let take = Math.min(3, segments.length); take >= 2; take--) {
    const zone = ianaZone(segments.slice(-take).join('/'));
    if (zone !== null) return zone;
  }
  const windows = windowsIdToIana(name);
  if (windows !== null) return ianaZone(windows);
  const { offsetMinutes, text } = splitDisplayName(name);
  for (const candidate of displayNameCandidates(text)) {
    const zone = ianaZone(candidate);
    if (zone === null) continue;
    // A city list can name a place in another zone than the one meant; the offset prefix decides.
    if (offsetMinutes === null || standardOffsetMinutes(zone) === offsetMinutes) return zone;
  }
  return null;
}

/**
 * IANA zone for a TZID as producers write it: IANA names (any case, old aliases), prefixed names,
 * Windows ids, and Exchange display names. Null when none applies.
 */
export function resolveTzid(name: string): string | null {
  const cached = resolved.get(name);
  if (cached !== undefined || resolved.has(name)) return cached ?? null;
  return remember(name, resolveUncached(name));
}

/** A fixed-offset zone ("+11:00") for names that only state an offset ("UTC+11", "GMT+0100"). */
export function offsetZone(name: string): string | null {
  const { offsetMinutes } = splitDisplayName(name.replace(/^"(.*)"$/, '$1'));
  if (offsetMinutes === null || Math.abs(offsetMinutes) > 18 * 60) return null;
  const abs = Math.abs(offsetMinutes);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${offsetMinutes < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/**
 * ical.js expands a VTIMEZONE's rules from their DTSTART up to the year asked for, one rule step at a
 * time; anything but yearly rules, or very many of them from very early years, or thousands of
 * RDATEs, could make that unbounded. Such a VTIMEZONE is not used.
 */
export function vtimezoneFromComponent(component: ICAL.Component): ICAL.Timezone | null {
  const rules = component.getAllSubcomponents();
  let rdates = 0;
  let ruleYears = 0;
  for (const rule of rules) {
    const start = rule.getFirstPropertyValue('dtstart') as ICAL.Time | null;
    for (const rrule of rule.getAllProperties('rrule')) {
      const value = rrule.getFirstValue() as ICAL.Recur;
      if (value.freq !== 'YEARLY') return null;
      ruleYears += 2200 - Math.min(2200, Math.max(1, start?.year ?? 1));
    }
    for (const rdate of rule.getAllProperties('rdate')) rdates += rdate.getValues().length;
  }
  if (rules.length > 200 || rdates > 2000 || ruleYears > 20_000) return null;
  const tz = new ICAL.Timezone(component);
  return tz.tzid === '' ? null : tz;
}

export const MS_PER_DAY = 86_400_000;

/** The Gregorian calendar repeats every 400 years, weekdays included. */
const CYCLE_MS = 146_097 * MS_PER_DAY;
const CYCLE_FROM = Date.UTC(1800, 0, 1);

/**
 * ical.js expands a VTIMEZONE's rules year by year up to the year asked for; moving far dates by whole
 * 400-year cycles into 1800–2200 gives the same rule-based offset without that walk.
 */
function cycleShift(ms: number): number {
  return ms >= CYCLE_FROM && ms < CYCLE_FROM + CYCLE_MS
    ? 0
    : -Math.floor((ms - CYCLE_FROM) / CYCLE_MS) * CYCLE_MS;
}

/** Wall-clock fields as if they were UTC epoch ms; works for years 0–99, which Date.UTC maps to 19xx. */
export function wallMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  if (year >= 100) return Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime();
}

/**
 * Converts between wall time and instants. Inside `range` IANA zones use the precomputed offset
 * timeline; outside it, Temporal directly, so results are exact everywhere.
 */
export class ZoneClock {
  private readonly lo: number;
  private readonly hi: number;
  private readonly timelines = new Map<string, ZoneTimeline>();

  private readonly range: { start: number; end: number };

  constructor(range: { start: number; end: number }) {
    // Beyond a few decades the timeline (two spans a year) costs more to build than Temporal per call.
    // Whole years, so successive windows (a sync moves with the clock) reuse the cached timelines.
    const start = Date.UTC(new Date(range.start).getUTCFullYear(), 0, 1);
    const end = Date.UTC(new Date(range.end).getUTCFullYear() + 1, 0, 1);
    this.range = { start, end: Math.min(end, start + 80 * 366 * MS_PER_DAY) };
    this.lo = this.range.start + MS_PER_DAY;
    this.hi = this.range.end - MS_PER_DAY;
  }

  private timeline(id: string): ZoneTimeline {
    let timeline = this.timelines.get(id);
    if (timeline === undefined) this.timelines.set(id, (timeline = ZoneTimeline.covering(id, this.range)));
    return timeline;
  }

  toInstant(wall: number, zone: Zone): number {
    if (zone.kind === 'vtimezone') {
      return wall - zone.tz.utcOffset(icalTime(wall + cycleShift(wall), false)) * 1000;
    }
    if (wall > this.lo && wall < this.hi) return this.timeline(zone.id).toInstant(wall);
    const d = new Date(wall);
    return Temporal.PlainDateTime.from({
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
    }).toZonedDateTime(zone.id, { disambiguation: 'compatible' }).epochMilliseconds;
  }

  toWall(instant: number, zone: Zone): number {
    if (zone.kind === 'vtimezone') {
      const shift = cycleShift(instant);
      const time = icalTime(instant + shift, false, ICAL.Timezone.utcTimezone).convertToZone(zone.tz);
      return wallMs(time.year, time.month, time.day, time.hour, time.minute, time.second) - shift;
    }
    if (instant > this.lo && instant < this.hi) return this.timeline(zone.id).toWall(instant);
    const zoned = Temporal.Instant.fromEpochMilliseconds(instant).toZonedDateTimeISO(zone.id);
    return instant + zoned.offsetNanoseconds / 1_000_000;
  }
}

/** An ical.js Time with the given wall fields; floating unless a zone is passed. */
export function icalTime(wall: number, isDate: boolean, zone?: ICAL.Timezone): ICAL.Time {
  const d = new Date(wall);
  const data = {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: isDate ? 0 : d.getUTCHours(),
    minute: isDate ? 0 : d.getUTCMinutes(),
    second: isDate ? 0 : d.getUTCSeconds(),
    isDate,
  };
  return new ICAL.Time(data, zone ?? ICAL.Timezone.localTimezone);
}

import { Temporal } from 'temporal-polyfill';
import { MS_PER_DAY } from './civil-date.js';
import type { Interval } from './intervals.js';

/**
 * A time zone's UTC offsets over a bounded range, fetched once from Temporal (one call per offset
 * transition) so that converting thousands of schedule boundaries is plain arithmetic.
 * "Wall" values are local wall-clock readings expressed as if they were UTC epoch milliseconds.
 */
type OffsetSpan = { from: number; until: number; offsetMs: number };

const CACHE_LIMIT = 512;
const cache = new Map<string, ZoneTimeline>();

export class ZoneTimeline {
  private constructor(private readonly spans: readonly OffsetSpan[]) {}

  /** Offsets are exact inside `range`; outside it the nearest known offset is extrapolated. */
  static covering(timeZone: string, range: Interval): ZoneTimeline {
    const key = `${timeZone}|${range.start}|${range.end}`;
    const cached = cache.get(key);
    if (cached !== undefined) return cached;
    const timeline = new ZoneTimeline(loadSpans(timeZone, range));
    // Insertion-order eviction is enough: one request reuses the same few keys for all its resources.
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(key, timeline);
    return timeline;
  }

  toWall(instant: number): number {
    for (const span of this.spans) {
      if (instant < span.until) return instant + span.offsetMs;
    }
    return instant + this.spans[this.spans.length - 1]!.offsetMs;
  }

  localDay(instant: number): number {
    return Math.floor(this.toWall(instant) / MS_PER_DAY);
  }

  /**
   * Temporal's 'compatible' disambiguation: a repeated wall time takes the earlier instant, and a wall
   * time inside a gap is read with the offset from before the gap, which moves it forward by the gap.
   */
  toInstant(wall: number): number {
    let previous: OffsetSpan | undefined;
    for (const span of this.spans) {
      const instant = wall - span.offsetMs;
      if (instant < span.from) return previous === undefined ? instant : wall - previous.offsetMs;
      if (instant < span.until) return instant;
      previous = span;
    }
    return wall - this.spans[this.spans.length - 1]!.offsetMs;
  }

  /** First instant of a local calendar day; equals Temporal's startOfDay even when midnight is skipped. */
  startOfDay(dayNumber: number): number {
    return this.toInstant(dayNumber * MS_PER_DAY);
  }
}

function loadSpans(timeZone: string, range: Interval): OffsetSpan[] {
  let zoned = Temporal.Instant.fromEpochMilliseconds(range.start).toZonedDateTimeISO(timeZone);
  const spans: OffsetSpan[] = [];
  let from = -Infinity;
  let offsetMs = zoned.offsetNanoseconds / 1_000_000;
  for (;;) {
    const next = zoned.getTimeZoneTransition('next');
    if (next === null || next.epochMilliseconds >= range.end) break;
    spans.push({ from, until: next.epochMilliseconds, offsetMs });
    from = next.epochMilliseconds;
    offsetMs = next.offsetNanoseconds / 1_000_000;
    zoned = next;
  }
  spans.push({ from, until: Infinity, offsetMs });
  return spans;
}

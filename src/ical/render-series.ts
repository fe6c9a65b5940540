import { Temporal } from 'temporal-polyfill';
import {
  type Component,
  dates,
  type DateValue,
  integer,
  type Property,
  raw,
  text,
  utc,
  zoned,
} from './write.js';

/** One occurrence of a recurring booking, as a feed shows it. */
export type OutgoingOccurrence = {
  bookingId: string;
  /** Where the rule placed it (epoch ms): its RECURRENCE-ID, kept when the booking is moved. */
  recurrenceId: number;
  startsAt: number;
  endsAt: number;
  title: string;
  description: string | null;
  status: 'confirmed' | 'cancelled';
  updatedAt: number;
};

/** A recurring booking: its rule as stored and every occurrence it ever had. */
export type OutgoingSeries = {
  /** `<series_id>@sched`. */
  uid: string;
  seriesId: string;
  timeZone: string;
  rule: {
    frequency: 'daily' | 'weekly' | 'monthly';
    interval: number;
    count: number | null;
    /** Epoch ms, or null. */
    until: number | null;
    byWeekday: readonly string[] | null;
  };
  /** Every occurrence, each rule instance once. */
  occurrences: readonly OutgoingOccurrence[];
};

const BYDAY: Record<string, string> = {
  mon: 'MO',
  tue: 'TU',
  wed: 'WE',
  thu: 'TH',
  fri: 'FR',
  sat: 'SA',
  sun: 'SU',
};

/** The RFC 5545 RECUR value of the rule; UNTIL in UTC, as the standard asks of a zoned DTSTART. */
export function recurValue(rule: OutgoingSeries['rule']): string {
  const parts = [`FREQ=${rule.frequency.toUpperCase()}`];
  if (rule.interval !== 1) parts.push(`INTERVAL=${rule.interval}`);
  if (rule.count !== null) parts.push(`COUNT=${rule.count}`);
  if (rule.until !== null)
    parts.push(
      `UNTIL=${new Date(rule.until)
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z')
        .replace(/[-:]/g, '')}`,
    );
  if (rule.byWeekday !== null) parts.push(`BYDAY=${rule.byWeekday.map((day) => BYDAY[day]).join(',')}`);
  if (rule.frequency === 'weekly') parts.push('WKST=MO');
  return parts.join(';');
}

function wallIn(zone: string, epochMs: number): string {
  return Temporal.Instant.fromEpochMilliseconds(epochMs)
    .toZonedDateTimeISO(zone)
    .toPlainDateTime()
    .toString({ smallestUnit: 'second' });
}

function formatOffset(offsetNs: number): string {
  const minutes = Math.round(offsetNs / 60_000_000_000);
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
}

/**
 * A VTIMEZONE for `zone` that is exact over `range`: one STANDARD or DAYLIGHT observance per offset
 * change in it (each with its onset as DTSTART, in the local time before the change), after the
 * offset in force at its start. Clients that know the IANA name use their own data; the others
 * read these.
 */
export function vtimezone(zone: string, range: { start: number; end: number }): Component {
  const observances: Component[] = [];
  const observance = (kind: 'STANDARD' | 'DAYLIGHT', onsetWall: string, from: number, to: number) =>
    observances.push({
      name: kind,
      properties: [
        dates('DTSTART', { form: 'floating', wall: onsetWall }),
        raw('TZOFFSETFROM', formatOffset(from)),
        raw('TZOFFSETTO', formatOffset(to)),
      ],
    });
  let current = Temporal.Instant.fromEpochMilliseconds(range.start).toZonedDateTimeISO(zone);
  // The offset in force at the start, as an observance beginning a day earlier.
  const startOffset = current.offsetNanoseconds;
  const firstChange = current.getTimeZoneTransition('next');
  const inDaylight = firstChange !== null && firstChange.offsetNanoseconds < startOffset;
  observance(
    inDaylight ? 'DAYLIGHT' : 'STANDARD',
    wallIn(zone, range.start - 86_400_000),
    startOffset,
    startOffset,
  );
  for (;;) {
    const next = current.getTimeZoneTransition('next');
    if (next === null || next.epochMilliseconds > range.end) break;
    const before = current.offsetNanoseconds;
    const after = next.offsetNanoseconds;
    // The onset in the local time before the change (RFC 5545 §3.6.5).
    const onset = Temporal.Instant.fromEpochMilliseconds(next.epochMilliseconds)
      .toZonedDateTimeISO('UTC')
      .toPlainDateTime()
      .add({ nanoseconds: before })
      .toString({ smallestUnit: 'second' });
    observance(after > before ? 'DAYLIGHT' : 'STANDARD', onset, before, after);
    current = next;
  }
  return { name: 'VTIMEZONE', properties: [text('TZID', zone)], components: observances };
}

function sameDescription(a: string | null, b: string | null): boolean {
  return (a ?? '') === (b ?? '');
}

/**
 * The series as one recurring event: a master VEVENT with the rule (DTSTART and DTEND in the series'
 * zone, so the wall-clock time holds across daylight-saving changes), EXDATE for each cancelled
 * occurrence, and a RECURRENCE-ID override for each occurrence that was moved or edited. The master
 * takes the first instance's duration, title and description. A series with no live occurrence
 * is written as one cancelled event.
 */
export function seriesVevents(series: OutgoingSeries): Component[] {
  const byInstance = [...series.occurrences].sort((a, b) => a.recurrenceId - b.recurrenceId);
  const first = byInstance[0];
  if (!first) return [];
  const zone = series.timeZone;
  const at = (epochMs: number): DateValue => zoned(zone, wallIn(zone, epochMs));
  const duration = first.endsAt - first.startsAt;
  const stamp = utc(Math.max(...byInstance.map((o) => o.updatedAt)));
  const live = byInstance.filter((o) => o.status === 'confirmed');
  const common = (occurrence: OutgoingOccurrence): Property[] => [
    text('UID', series.uid),
    dates('DTSTAMP', stamp),
    dates('LAST-MODIFIED', utc(occurrence.updatedAt)),
  ];
  const described = (occurrence: OutgoingOccurrence): Property[] =>
    occurrence.description !== null && occurrence.description !== ''
      ? [text('DESCRIPTION', occurrence.description)]
      : [];
  const master: Property[] = [
    ...common(first),
    dates('DTSTART', at(first.recurrenceId)),
    dates('DTEND', at(first.recurrenceId + duration)),
    integer('SEQUENCE', 0),
    text('SUMMARY', first.title),
    ...described(first),
  ];
  if (live.length === 0) {
    master.push(raw('STATUS', 'CANCELLED'), raw('TRANSP', 'OPAQUE'));
    master.push(text('X-SCHED-SERIES-ID', series.seriesId));
    return [{ name: 'VEVENT', properties: master }];
  }
  master.push(raw('RRULE', recurValue(series.rule)));
  const cancelled = byInstance.filter((o) => o.status === 'cancelled');
  if (cancelled.length > 0) master.push(dates('EXDATE', ...cancelled.map((o) => at(o.recurrenceId))));
  master.push(
    raw('STATUS', 'CONFIRMED'),
    raw('TRANSP', 'OPAQUE'),
    text('X-SCHED-BOOKING-ID', first.bookingId),
    text('X-SCHED-SERIES-ID', series.seriesId),
  );
  const overrides: Component[] = live
    .filter(
      (o) =>
        o.startsAt !== o.recurrenceId ||
        o.endsAt - o.startsAt !== duration ||
        o.title !== first.title ||
        !sameDescription(o.description, first.description),
    )
    .map((o) => ({
      name: 'VEVENT',
      properties: [
        ...common(o),
        dates('RECURRENCE-ID', at(o.recurrenceId)),
        dates('DTSTART', at(o.startsAt)),
        dates('DTEND', at(o.endsAt)),
        integer('SEQUENCE', 0),
        text('SUMMARY', o.title),
        ...described(o),
        raw('STATUS', 'CONFIRMED'),
        raw('TRANSP', 'OPAQUE'),
        text('X-SCHED-BOOKING-ID', o.bookingId),
        text('X-SCHED-SERIES-ID', series.seriesId),
      ],
    }));
  return [{ name: 'VEVENT', properties: master }, ...overrides];
}

/** The span a series' events cover, for its VTIMEZONE. */
export function seriesRange(series: OutgoingSeries): { start: number; end: number } {
  const starts = series.occurrences.flatMap((o) => [o.recurrenceId, o.startsAt]);
  const ends = series.occurrences.flatMap((o) => [o.recurrenceId + (o.endsAt - o.startsAt), o.endsAt]);
  return { start: Math.min(...starts), end: Math.max(...ends) };
}

/**
 * The 10,000 events of the first-sync benchmark (bench/providers.ts), as each provider's emulator
 * is loaded with them: the same every run for a day.
 */
import type { GoogleControl } from '../test/emulators/google/control-client.js';
import type { GraphControl } from '../test/emulators/graph/graph-emulator.js';
import { EVENT_TITLES } from './fixtures.js';
import { seededRandom } from './support.js';

export type OAuthProvider = 'google' | 'outlook';

export const MS_PER_MINUTE = 60_000;
export const MS_PER_DAY = 86_400_000;
export const SINGLES = 9_800;
export const SERIES = 200;

const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/**
 * One event as a user keeps it, before it is written in either provider's dialect. Times are wall
 * clock in `zone`; a series is weekly on its first day's weekday.
 */
export type EventSpec = {
  index: number;
  title: string;
  location: string;
  /** UTC midnight of the (first) day. */
  day: number;
  /** Wall-clock minutes after midnight in `zone`. */
  startMinute: number;
  minutes: number;
  zone: 'UTC' | 'Europe/Berlin';
  allDay: boolean;
  free: boolean;
  /** Occurrences of a weekly series; absent for a single event. */
  weeks?: number;
  /** The series ends on a date (UNTIL / endDate) rather than after a count. */
  untilDate?: boolean;
  /** Google only: the second occurrence moved two hours later, as an exception. */
  moved?: boolean;
  /** Google only: the third occurrence cancelled. */
  cancelled?: boolean;
};

/**
 * 9,800 single events and 200 weekly series, the same every run for a day, placed so that every
 * occurrence falls at least a day inside the Graph adapter's window (now − 31 days to now + 400 days):
 * the number of items a full read returns then does not depend on the minute the bench runs.
 */
export function eventSpecs(today: number): EventSpec[] {
  const random = seededRandom(0x90091e);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  const specs: EventSpec[] = [];
  for (let index = 0; index < SERIES + SINGLES; index++) {
    const recurring = index < SERIES;
    const offset = recurring ? between(-28, 200) : between(-29, 398);
    const allDay = !recurring && index % 10 === 5;
    const spec: EventSpec = {
      index,
      title: pick(EVENT_TITLES),
      location: random() < 0.5 ? `Room ${between(1, 40)}` : 'Online',
      day: today + offset * MS_PER_DAY,
      startMinute: (7 + between(0, 21) / 2) * 60,
      minutes: pick([30, 45, 60, 60, 90]),
      zone: index % 2 === 0 ? 'Europe/Berlin' : 'UTC',
      allDay,
      free: allDay || index % 17 === 0,
    };
    if (recurring) {
      spec.weeks = Math.min(between(10, 52), Math.floor((395 - offset) / 7) + 1);
      spec.untilDate = index % 4 < 2;
      // Exceptions are made on UTC series, whose instance ids are the occurrences' UTC times.
      spec.moved = spec.zone === 'UTC';
      spec.cancelled = spec.zone === 'UTC' && index % 4 === 1;
    }
    specs.push(spec);
  }
  return specs;
}

const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const compactDate = (ms: number) => isoDate(ms).replace(/-/g, '');
/** 2026-11-21T09:30:00: the wall-clock time `minute` minutes after the midnight of `day`. */
const wall = (day: number, minute: number) =>
  new Date(day + minute * MS_PER_MINUTE).toISOString().slice(0, 19);
const lastDay = (spec: EventSpec) => spec.day + 7 * ((spec.weeks ?? 1) - 1) * MS_PER_DAY;
const description = (spec: EventSpec) =>
  `Agenda and notes for event ${spec.index}, written by the organiser.`;

function googleTime(spec: EventSpec, minute: number): Record<string, string> {
  if (spec.weeks !== undefined) return { dateTime: wall(spec.day, minute), timeZone: spec.zone };
  if (spec.zone === 'UTC') return { dateTime: `${wall(spec.day, minute)}Z` };
  return { dateTime: wall(spec.day, minute), timeZone: spec.zone };
}

export function googleEvent(spec: EventSpec): Record<string, unknown> {
  const event: Record<string, unknown> = {
    summary: spec.title,
    location: spec.location,
    description: description(spec),
    ...(spec.free ? { transparency: 'transparent' } : {}),
  };
  if (spec.allDay) {
    event.start = { date: isoDate(spec.day) };
    event.end = { date: isoDate(spec.day + MS_PER_DAY) };
    return event;
  }
  event.start = googleTime(spec, spec.startMinute);
  event.end = googleTime(spec, spec.startMinute + spec.minutes);
  if (spec.weeks !== undefined) {
    event.recurrence = [
      spec.untilDate
        ? `RRULE:FREQ=WEEKLY;UNTIL=${compactDate(lastDay(spec))}T235959Z`
        : `RRULE:FREQ=WEEKLY;COUNT=${spec.weeks}`,
    ];
  }
  return event;
}

export function graphEvent(spec: EventSpec): Record<string, unknown> {
  const event: Record<string, unknown> = {
    subject: spec.title,
    location: { displayName: spec.location },
    body: { contentType: 'text', content: description(spec) },
    showAs: spec.free ? 'free' : 'busy',
  };
  if (spec.allDay) {
    event.isAllDay = true;
    event.start = { dateTime: wall(spec.day, 0), timeZone: 'UTC' };
    event.end = { dateTime: wall(spec.day + MS_PER_DAY, 0), timeZone: 'UTC' };
    return event;
  }
  event.start = { dateTime: wall(spec.day, spec.startMinute), timeZone: spec.zone };
  event.end = { dateTime: wall(spec.day, spec.startMinute + spec.minutes), timeZone: spec.zone };
  if (spec.weeks !== undefined) {
    const startDate = isoDate(spec.day);
    event.recurrence = {
      pattern: { type: 'weekly', interval: 1, daysOfWeek: [WEEKDAYS[new Date(spec.day).getUTCDay()]] },
      range: spec.untilDate
        ? { type: 'endDate', startDate, endDate: isoDate(lastDay(spec)) }
        : { type: 'numbered', startDate, numberOfOccurrences: spec.weeks },
    };
  }
  return event;
}

/** What a full read of each emulator returns for these specs: the items counted on both sides. */
export function expectedItems(specs: readonly EventSpec[]): Record<OAuthProvider, number> {
  let google = 0;
  let outlook = 0;
  for (const spec of specs) {
    google += 1 + (spec.moved ? 1 : 0) + (spec.cancelled ? 1 : 0);
    outlook += spec.weeks ?? 1;
  }
  return { google, outlook };
}

/** Several control calls in flight at once: one at a time, the round trips would dominate loading. */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: width }, lane));
}

export async function loadGoogle(control: GoogleControl, calendarId: string, specs: readonly EventSpec[]) {
  await inParallel(specs, 16, async (spec) => {
    const master = await control.insertEvent(calendarId, googleEvent(spec));
    const instance = (week: number) =>
      `${master.id}_${compactDate(spec.day + week * 7 * MS_PER_DAY)}T${wall(0, spec.startMinute).slice(11).replace(/:/g, '')}Z`;
    if (spec.moved) {
      const day = spec.day + 7 * MS_PER_DAY;
      const minute = spec.startMinute + 120;
      await control.patchEvent(calendarId, instance(1), {
        start: { dateTime: wall(day, minute), timeZone: 'UTC' },
        end: { dateTime: wall(day, minute + spec.minutes), timeZone: 'UTC' },
      });
    }
    if (spec.cancelled) await control.deleteEvent(calendarId, instance(2));
  });
}

export function loadGraph(control: GraphControl, calendarId: string, specs: readonly EventSpec[]) {
  for (const spec of specs) control.putEvent(calendarId, graphEvent(spec));
}

import { Temporal } from 'temporal-polyfill';
import { windowsIdToIana } from '../../../src/ical/windows-zones.js';

/** Graph's dateTimeTimeZone: a wall time without offset, and a Windows or IANA zone name. */
export type DateTimeTimeZone = { dateTime: string; timeZone: string };

export class TimeError extends Error {}

/** IANA id for a Graph zone name; Graph accepts both Windows ids and IANA names. */
export function ianaOf(name: string): string {
  const trimmed = name.trim();
  if (/^(utc|gmt|z|coordinated universal time)$/i.test(trimmed)) return 'UTC';
  const windows = windowsIdToIana(trimmed);
  if (windows) return windows;
  try {
    return Temporal.Now.zonedDateTimeISO(trimmed).timeZoneId;
  } catch {
    throw new TimeError(`time zone "${name}" is not supported`);
  }
}

/** Graph writes 7 fractional digits; Temporal reads up to 9, so longer or offset forms are refused. */
function plainDateTime(text: string): Temporal.PlainDateTime {
  const match = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?$/.exec(text.trim());
  if (!match) throw new TimeError(`"${text}" is not a dateTime`);
  return Temporal.PlainDateTime.from(match[2] ? `${match[1]}T${match[2]}` : `${match[1]}T00:00`);
}

export function toInstant(value: DateTimeTimeZone): number {
  return plainDateTime(value.dateTime).toZonedDateTime(ianaOf(value.timeZone)).epochMilliseconds;
}

export function wallOf(value: DateTimeTimeZone): Temporal.PlainDateTime {
  return plainDateTime(value.dateTime);
}

export function isMidnight(value: DateTimeTimeZone): boolean {
  const wall = wallOf(value);
  return wall.hour === 0 && wall.minute === 0 && wall.second === 0 && wall.millisecond === 0;
}

function graphText(wall: Temporal.PlainDateTime): string {
  const base = wall.toString({ smallestUnit: 'second' });
  const fraction = String(wall.millisecond).padStart(3, '0');
  return `${base}.${fraction}0000`;
}

/** An instant as Graph answers it: the wall time in `zone` (a name as the client spelled it). */
export function fromInstant(epochMs: number, zone: string): DateTimeTimeZone {
  const wall = Temporal.Instant.fromEpochMilliseconds(epochMs)
    .toZonedDateTimeISO(ianaOf(zone))
    .toPlainDateTime();
  return { dateTime: graphText(wall), timeZone: zone };
}

/** All-day values stay midnight-to-midnight on their own dates in whatever zone is asked for. */
export function floatingDate(date: Temporal.PlainDate, zone: string): DateTimeTimeZone {
  return { dateTime: graphText(date.toPlainDateTime({ hour: 0 })), timeZone: zone };
}

export function instantOfWall(wall: Temporal.PlainDateTime, zone: string): number {
  return wall.toZonedDateTime(ianaOf(zone)).epochMilliseconds;
}

export function isoUtc(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

/** calendarView bounds: ISO 8601; an offset is honoured, none means UTC. */
export function parseBound(text: string | null): number | null {
  if (!text) return null;
  const trimmed = text.trim();
  const withZone = /([zZ]|[+-]\d{2}:?\d{2})$/.test(trimmed) ? trimmed : `${trimmed}Z`;
  const value = Date.parse(withZone);
  return Number.isNaN(value) ? null : value;
}

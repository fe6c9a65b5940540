import { Temporal } from 'temporal-polyfill';

export const MS_PER_DAY = 86_400_000;

/** RFC 3339 with a mandatory offset, as Google demands for timeMin/timeMax and dateTime values. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;

export function parseRfc3339(text: string): number | null {
  if (!RFC3339.test(text)) return null;
  try {
    return Temporal.Instant.from(text).epochMilliseconds;
  } catch {
    return null;
  }
}

export function isDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  try {
    Temporal.PlainDate.from(text, { overflow: 'reject' });
    return true;
  } catch {
    return false;
  }
}

export function isZone(name: string): boolean {
  try {
    Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(name);
    return true;
  } catch {
    return false;
  }
}

/** "2026-03-30T09:00:00+02:00": how Google writes a dateTime in an event's own zone. */
export function formatInZone(epochMs: number, zone: string): string {
  return Temporal.Instant.fromEpochMilliseconds(epochMs)
    .toZonedDateTimeISO(zone)
    .toString({ timeZoneName: 'never', fractionalSecondDigits: 0 });
}

export function formatUtc(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function formatUtcMillis(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

/** Wall-clock time as milliseconds of a UTC-like timeline, so dates and times are plain arithmetic. */
export function toWall(epochMs: number, zone: string): number {
  const wall = Temporal.Instant.fromEpochMilliseconds(epochMs).toZonedDateTimeISO(zone).toPlainDateTime();
  return Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
}

/** RFC 5545 §3.3.5: a time in a DST gap moves forward, a repeated one takes its first occurrence. */
export function fromWall(wall: number, zone: string): number {
  const d = new Date(wall);
  return Temporal.PlainDateTime.from({
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  }).toZonedDateTime(zone, { disambiguation: 'compatible' }).epochMilliseconds;
}

export function dateOfWall(wall: number): string {
  return new Date(wall).toISOString().slice(0, 10);
}

export function wallOfDate(date: string): number {
  return Date.parse(`${date}T00:00:00Z`);
}

/** 20260330T070000Z / 20260330: the suffix Google puts on instance ids. */
export function compactUtc(epochMs: number): string {
  return formatUtc(epochMs).replace(/[-:]/g, '');
}

export function compactDate(date: string): string {
  return date.replace(/-/g, '');
}

/** "2026-03-02T10:00:00" read in a zone; null when it is not such a local time. */
export function parseLocalInZone(text: string, zone: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(text)) return null;
  try {
    return Temporal.PlainDateTime.from(text, { overflow: 'reject' }).toZonedDateTime(zone).epochMilliseconds;
  } catch {
    return null;
  }
}

import { Temporal } from 'temporal-polyfill';
import { daysFromCivil, isCalendarDate, MS_PER_DAY, MS_PER_MINUTE, parseLocalDate } from './civil-date.js';
import type { Interval } from './intervals.js';
import { ZoneTimeline } from './zone-timeline.js';

/**
 * An IANA zone name or an alias IANA keeps (`US/Eastern`, `CET`, `EST`, `america/new_york`); what is
 * stored is `canonicalTimeZone` of it. Offsets ("+02:00") are not places and are refused.
 */
export function isValidTimeZone(timeZone: string): boolean {
  return canonicalTimeZone(timeZone) !== null;
}

const canonicalZones = new Set<string>();

/** Names that are already places in IANA's own layout (Area/Location): kept as given, in Temporal's spelling. */
const IANA_AREA = /^(?:Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific)\//;
/** Etc/GMT+5 and the like: fixed offsets that IANA keeps under their own names. */
const ETC_OFFSET = /^Etc\/GMT[+-]\d{1,2}$/;

/**
 * The zone name to store for one a user gave, or null when it names no zone. IANA's aliases are
 * accepted and resolved the way Intl resolves them ("US/Eastern" → "America/New_York", "CET" →
 * "Europe/Brussels", "GMT" → "UTC"); a name in IANA's Area/Location form is kept as it is (in its
 * canonical spelling: "america/new_york" → "America/New_York"), so that "Asia/Kolkata" is not turned
 * into ICU's older "Asia/Calcutta". Bare offsets ("+02:00") name no place and are refused.
 */
export function canonicalTimeZone(timeZone: string): string | null {
  if (canonicalZones.has(timeZone)) return timeZone;
  let id: string;
  try {
    id = Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(timeZone).timeZoneId;
  } catch {
    return null;
  }
  if (/^[+-]/.test(id)) return null;
  let canonical = id;
  if (id !== 'UTC' && !IANA_AREA.test(id) && !ETC_OFFSET.test(id)) {
    try {
      canonical = new Intl.DateTimeFormat('en-US', { timeZone: id }).resolvedOptions().timeZone;
    } catch {
      return null;
    }
  }
  // Only canonical names are cached, so that spellings a client makes up cannot grow the set.
  if (canonical === timeZone) canonicalZones.add(timeZone);
  return canonical;
}

function millisecondDigits(epochMs: number): 0 | 3 {
  return ((epochMs % 1000) + 1000) % 1000 === 0 ? 0 : 3;
}

export function formatInstant(epochMs: number, timeZone?: string): string {
  if (timeZone === undefined) {
    const iso = new Date(epochMs).toISOString();
    return millisecondDigits(epochMs) === 0 ? iso.replace('.000Z', 'Z') : iso;
  }
  return Temporal.Instant.fromEpochMilliseconds(epochMs)
    .toZonedDateTimeISO(timeZone)
    .toString({ timeZoneName: 'never', offset: 'auto', fractionalSecondDigits: millisecondDigits(epochMs) });
}

/**
 * `formatInstant` for many instants of one zone within `range`: the offsets are looked up once, so
 * each instant is arithmetic and one toISOString instead of a Temporal conversion (about 40 µs).
 * Offsets that are not whole minutes (local mean time before 1940 in a few zones) go to Temporal.
 */
export function instantFormatter(timeZone: string | undefined, range: Interval): (epochMs: number) => string {
  if (timeZone === undefined) return (epochMs) => formatInstant(epochMs);
  const timeline = ZoneTimeline.covering(timeZone, range);
  return (epochMs) => {
    const offsetMs = timeline.toWall(epochMs) - epochMs;
    if (epochMs < range.start || epochMs > range.end || offsetMs % MS_PER_MINUTE !== 0) {
      return formatInstant(epochMs, timeZone);
    }
    const wall = new Date(epochMs + offsetMs).toISOString();
    const minutes = Math.abs(offsetMs) / MS_PER_MINUTE;
    const offset =
      (offsetMs < 0 ? '-' : '+') +
      String(Math.floor(minutes / 60)).padStart(2, '0') +
      ':' +
      String(minutes % 60).padStart(2, '0');
    return (millisecondDigits(epochMs) === 0 ? wall.slice(0, 19) : wall.slice(0, 23)) + offset;
  };
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

export function parseInstant(text: string): number | null {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const [, year, month, day, hour, minute, second, fraction, zulu, sign, offsetHour, offsetMinute] = m;
  const y = Number(year);
  const mo = Number(month);
  const d = Number(day);
  const h = Number(hour);
  const mi = Number(minute);
  const s = Number(second);
  // Leap seconds (":60") are rejected rather than smeared: nothing in the system can represent them.
  if (!isCalendarDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return null;
  let offsetMinutes = 0;
  if (zulu === undefined) {
    const oh = Number(offsetHour);
    const om = Number(offsetMinute);
    if (oh > 23 || om > 59) return null;
    offsetMinutes = (sign === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Sub-millisecond digits are truncated, matching how Temporal reports epochMilliseconds.
  const millis = fraction === undefined ? 0 : Number(fraction.padEnd(3, '0').slice(0, 3));
  return (
    daysFromCivil(y, mo, d) * MS_PER_DAY + (h * 60 + mi - offsetMinutes) * MS_PER_MINUTE + s * 1000 + millis
  );
}

/** The years an instant given to the API may name (as written, before its offset is applied). */
export const MIN_API_YEAR = 1900;
export const MAX_API_YEAR = 9999;

/**
 * An instant as the API accepts it: RFC 3339 with an offset, in the years 1900–9999. Provider data goes
 * through parseInstant, which takes any year the format can spell.
 */
export function parseApiInstant(text: string): number | null {
  const year = Number(text.slice(0, 4));
  if (!(year >= MIN_API_YEAR && year <= MAX_API_YEAR)) return null;
  return parseInstant(text);
}

export function isValidLocalDate(text: string): boolean {
  return parseLocalDate(text) !== null;
}

const WALL_TIME = /^(?:[01]\d|2[0-3]):[0-5]\d$/;

export function isValidWallTime(text: string): boolean {
  return text === '24:00' || WALL_TIME.test(text);
}

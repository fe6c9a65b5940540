import type ICAL from 'ical.js';
import { MS_PER_DAY, wallMs } from './time-zones.js';

/** A DATE or DATE-TIME as written: wall-clock fields (as UTC epoch ms), and how to read them. */
export type DateValue = { wall: number; isDate: boolean; utc: boolean };

/** Anything longer is refused: no real event lasts a century, and huge values overflow Date. */
const MAX_DURATION_MS = 100 * 366 * MS_PER_DAY;

export class IcalValueError extends Error {}

/**
 * Parses ical.js's jCal form of a DATE ("2026-01-05") or DATE-TIME ("2026-01-05T09:00:00[Z]").
 * ical.js decodes a bare "DTSTART:20260105" (VALUE=DATE missing, as Exchange writes it) to
 * "2026-01-05T::"; that is read as a DATE.
 */
export function parseDateValue(text: string, property: string): DateValue {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(?:(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z)?|::))?$/.exec(text);
  // ical.js has already cut the text into date and time fields, so the value is shown as it read it.
  if (m === null) throw new IcalValueError(`${property}: invalid date or date-time (read as "${text}")`);
  const [, y, mo, d, h, mi, s, z] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31) {
    throw new IcalValueError(`${property}: invalid date "${text}"`);
  }
  if (h === undefined) return { wall: wallMs(year, month, day), isDate: true, utc: false };
  const hour = Number(h);
  const minute = Number(mi);
  // A leap second (":60") is read as the last whole second of the minute.
  const second = Math.min(59, Number(s));
  if (hour > 23 || minute > 59) throw new IcalValueError(`${property}: invalid time "${text}"`);
  return { wall: wallMs(year, month, day, hour, minute, second), isDate: false, utc: z !== undefined };
}

/** A DURATION split into nominal days (which follow wall-clock days across DST) and exact ms. */
export type DurationValue = { days: number; ms: number };

export function parseDuration(text: string, property = 'DURATION'): DurationValue {
  const m = /^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(text.trim());
  if (m === null || text.trim() === 'P' || text.trim().endsWith('T')) {
    throw new IcalValueError(`${property}: invalid duration "${text}"`);
  }
  const [, sign, w, d, h, mi, s] = m;
  const days = Number(w ?? 0) * 7 + Number(d ?? 0);
  const ms = (Number(h ?? 0) * 3600 + Number(mi ?? 0) * 60 + Number(s ?? 0)) * 1000;
  if (days * MS_PER_DAY + ms > MAX_DURATION_MS) {
    throw new IcalValueError(`${property}: duration "${text}" is out of range`);
  }
  return sign === '-' ? { days: -days, ms: -ms } : { days, ms };
}

/** The raw jCal values of a property: strings, or [start, end|duration] pairs for PERIOD. */
export function rawValues(property: ICAL.Property): unknown[] {
  return (property.jCal as unknown[]).slice(3);
}

export function rawType(property: ICAL.Property): string {
  return String((property.jCal as unknown[])[2]);
}

export function tzidOf(property: ICAL.Property): string | null {
  const tzid = property.getParameter('tzid');
  if (typeof tzid === 'string' && tzid.trim() !== '') return tzid;
  if (Array.isArray(tzid) && typeof tzid[0] === 'string') return tzid[0];
  return null;
}

export function textOf(component: ICAL.Component, name: string): string | null {
  const value: unknown = component.getFirstPropertyValue(name);
  if (value === null || value === undefined) return null;
  // ical.js decodes some values (DURATION, numbers) to objects whose toString gives the iCalendar form.
  return typeof value === 'string' ? value : (value as { toString(): string }).toString();
}

export function dateKey(wall: number): string {
  return new Date(wall).toISOString().slice(0, 10);
}

export function instantText(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.000Z$/, 'Z');
}

import { createHash } from 'node:crypto';
import ICAL from 'ical.js';
import { checkSize, describeError, ICS_MAX_BYTES, normaliseText, parseCalendars } from './parse-text.js';

export { ICS_MAX_BYTES } from './parse-text.js';

export type CalendarPart = { uid: string; ics: string };

/**
 * `unreadable` holds each VEVENT that does not parse, as written (wrapped in a VCALENDAR), so that a
 * caller that stores it can name it and say why when it is read; `parts` holds the readable ones.
 */
export type SplitResult =
  | { ok: true; parts: CalendarPart[]; warnings: string[]; unreadable: CalendarPart[] }
  | { ok: false; error: string; unreadable?: CalendarPart[] };

type JCal = [string, unknown[], unknown[]];
type Entry = { event: JCal; key: string; sequence: number; stamp: string; wrTimezone: string | null };

const PRODID = '-//Sched//Sched//EN';

/**
 * Splits a whole calendar (an ICS feed, possibly several VCALENDARs, with a BOM) into one VCALENDAR
 * per UID: the master, its RECURRENCE-ID overrides, and the VTIMEZONEs they use (X-WR-TIMEZONE is
 * carried along). VEVENTs without a UID get a stable one derived from their content.
 */
export function splitCalendar(text: string, options: { maxBytes?: number } = {}): SplitResult {
  try {
    checkSize(text, options.maxBytes ?? ICS_MAX_BYTES);
    const normalised = normaliseText(text);
    const warnings: string[] = [];
    let calendars: ICAL.Component[];
    const unreadable: CalendarPart[] = [];
    try {
      calendars = parseCalendars(normalised);
    } catch (error) {
      calendars = salvage(normalised, warnings, unreadable);
      if (calendars.length === 0) return { ok: false, error: describeError(error), unreadable };
      warnings.unshift(
        `the calendar as a whole did not parse (${describeError(error)}); its VEVENTs were read one by one`,
      );
    }
    const parts = split(calendars, warnings);
    // One remote object per UID: an unreadable event of a UID that has readable ones is only a warning.
    const uids = new Set(parts.map((part) => part.uid));
    const unread = unreadable.filter((part) => !uids.has(part.uid) && Boolean(uids.add(part.uid)));
    return { ok: true, parts, warnings, unreadable: unread };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
}

function split(calendars: ICAL.Component[], warnings: string[]): CalendarPart[] {
  const timezones = new Map<string, JCal>();
  const byUid = new Map<string, Map<string, Entry>>();
  const ignored = new Map<string, number>();
  let prodid: unknown = null;
  for (const calendar of calendars) {
    prodid ??= calendar.getFirstPropertyValue('prodid');
    const wr = calendar.getFirstPropertyValue('x-wr-timezone');
    const wrTimezone = typeof wr === 'string' && wr.trim() !== '' ? wr.trim() : null;
    for (const component of calendar.getAllSubcomponents()) {
      if (component.name === 'vtimezone') {
        const tzid = component.getFirstPropertyValue('tzid');
        if (typeof tzid === 'string' && !timezones.has(tzid)) timezones.set(tzid, component.jCal as JCal);
      } else if (component.name === 'vevent') {
        add(byUid, component, wrTimezone, warnings);
      } else {
        ignored.set(component.name, (ignored.get(component.name) ?? 0) + 1);
      }
    }
  }
  for (const [name, count] of ignored) {
    warnings.push(`ignored ${count} ${name.toUpperCase()} component${count === 1 ? '' : 's'}`);
  }
  const header: unknown[] = [
    ['version', {}, 'text', '2.0'],
    ['prodid', {}, 'text', typeof prodid === 'string' ? prodid : PRODID],
  ];
  const parts: CalendarPart[] = [];
  for (const [uid, entries] of byUid) {
    const events = [...entries.values()];
    const wrTimezone = events.find((e) => e.wrTimezone !== null)?.wrTimezone ?? null;
    const properties = [...header];
    if (wrTimezone !== null) properties.push(['x-wr-timezone', {}, 'unknown', wrTimezone]);
    const used = new Set<string>();
    for (const entry of events) collectTzids(entry.event, used);
    const zones = [...used].map((tzid) => timezones.get(tzid)).filter((zone) => zone !== undefined);
    const root: JCal = ['vcalendar', properties, [...zones, ...events.map((e) => e.event)]];
    const ics = ICAL.stringify(root);
    parts.push({ uid, ics: ics.endsWith('\r\n') ? ics : ics + '\r\n' });
  }
  return parts;
}

function add(
  byUid: Map<string, Map<string, Entry>>,
  component: ICAL.Component,
  wrTimezone: string | null,
  warnings: string[],
): void {
  let uid = component.getFirstPropertyValue('uid');
  if (typeof uid !== 'string' || uid.trim() === '') {
    // Content-derived, so re-importing the same feed yields the same UID and no duplicates.
    uid = createHash('sha256').update(component.toString()).digest('hex').slice(0, 32) + '@sched.invalid';
    component.updatePropertyWithValue('uid', uid);
  }
  repairBareDates(component.jCal as JCal);
  const rid = component.getFirstProperty('recurrence-id');
  const key =
    rid === null ? '' : JSON.stringify([rid.getParameter('tzid') ?? null, (rid.jCal as unknown[])[3]]);
  const sequence = Number(component.getFirstPropertyValue('sequence'));
  const stampProperty = component.getFirstProperty('dtstamp');
  const entry: Entry = {
    event: component.jCal as JCal,
    key,
    sequence: Number.isFinite(sequence) ? sequence : 0,
    stamp: stampProperty === null ? '' : String((stampProperty.jCal as unknown[])[3]),
    wrTimezone,
  };
  let entries = byUid.get(uid);
  if (entries === undefined) byUid.set(uid, (entries = new Map<string, Entry>()));
  const seen = entries.get(key);
  if (seen !== undefined) {
    warnings.push(`UID "${uid}": duplicate ${key === '' ? 'master' : 'override'}, the newest is kept`);
    const keepSeen =
      seen.sequence > entry.sequence || (seen.sequence === entry.sequence && seen.stamp > entry.stamp);
    if (keepSeen) return;
  }
  entries.set(key, entry);
}

/**
 * ical.js reads a DATE written without VALUE=DATE ("DTSTART:20260105") as a DATE-TIME with empty
 * time fields, and would write that back as an unreadable value; it is turned into the DATE it is.
 */
function repairBareDates(component: JCal): void {
  for (const property of component[1] as unknown[][]) {
    const values = property.slice(3);
    if (property[2] !== 'date-time' || values.length === 0) continue;
    if (!values.every((v) => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}(?:T::)?$/.test(v))) continue;
    property.splice(2, property.length - 2, 'date', ...values.map((v) => (v as string).slice(0, 10)));
  }
  for (const child of component[2]) repairBareDates(child as JCal);
}

/** The UID line of an event that does not parse, or one derived from its text. */
function uidOf(lines: readonly string[]): string {
  for (const line of lines) {
    const uid = /^UID(?:;[^:]*)?:(.*)$/i.exec(line)?.[1]?.trim();
    if (uid) return uid;
  }
  return createHash('sha256').update(lines.join('\r\n')).digest('hex').slice(0, 32) + '@sched.invalid';
}

function collectTzids(component: JCal, into: Set<string>): void {
  for (const property of component[1] as [string, Record<string, unknown>][]) {
    const tzid = property[1]?.tzid;
    if (typeof tzid === 'string') into.add(tzid);
  }
  for (const child of component[2]) collectTzids(child as JCal, into);
}

/**
 * Reads VEVENTs and VTIMEZONEs one by one when the whole text does not parse, so one broken event
 * in a feed does not hide all the others. Each dropped component is named by its first line.
 */
function salvage(text: string, warnings: string[], unreadable: CalendarPart[]): ICAL.Component[] {
  const lines = text.split(/\r?\n/);
  const calendars: ICAL.Component[] = [];
  const header: string[] = [];
  let block: string[] | null = null;
  let blockName = '';
  let blockLine = 0;
  let depth = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const begin = /^BEGIN:(\S+)/i.exec(line)?.[1]?.toUpperCase();
    const end = /^END:(\S+)/i.exec(line)?.[1]?.toUpperCase();
    if (block === null) {
      if (begin === 'VEVENT' || begin === 'VTIMEZONE') {
        block = [line];
        blockName = begin;
        blockLine = i + 1;
        depth = 1;
      } else if (/^X-WR-TIMEZONE[:;]/i.test(line)) {
        header.push(line);
      }
      continue;
    }
    block.push(line);
    if (begin !== undefined) depth++;
    if (end !== undefined && --depth === 0) {
      const wrapped = ['BEGIN:VCALENDAR', 'VERSION:2.0', ...header, ...block, 'END:VCALENDAR'].join('\r\n');
      try {
        calendars.push(...parseCalendars(wrapped));
      } catch (error) {
        warnings.push(
          `line ${blockLine}: ${blockName} dropped: ${describeError(error).replace(/^line \d+: /, '')}`,
        );
        if (blockName === 'VEVENT') unreadable.push({ uid: uidOf(block), ics: wrapped + '\r\n' });
      }
      block = null;
    }
  }
  if (block !== null) warnings.push(`line ${blockLine}: ${blockName} dropped: it is not closed`);
  return calendars.some((c) => c.getFirstSubcomponent('vevent') !== null) ? calendars : [];
}

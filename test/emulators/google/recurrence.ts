import ICAL from 'ical.js';
import {
  compactDate,
  compactUtc,
  dateOfWall,
  formatInZone,
  fromWall,
  MS_PER_DAY,
  parseRfc3339,
  toWall,
  wallOfDate,
} from './time.js';
import type { EventDateTime, GoogleEvent } from './types.js';

/** One generated occurrence of a series, before exceptions are applied. */
export type Instance = {
  /** The suffix of the instance id: 20260330T070000Z, or 20260330 for all-day series. */
  key: string;
  originalStartTime: EventDateTime;
  start: EventDateTime;
  end: EventDateTime;
  startMs: number;
  endMs: number;
};

export type Span = { startMs: number; endMs: number; allDay: boolean };

/** Instant span of an event; all-day dates are read in the calendar's zone, as Google does. */
export function spanOf(event: Pick<GoogleEvent, 'start' | 'end'>, calendarZone: string): Span | null {
  const start = event.start;
  const end = event.end;
  if (!start || !end) return null;
  if (start.date !== undefined) {
    const endDate = end.date ?? start.date;
    return {
      startMs: fromWall(wallOfDate(start.date), calendarZone),
      endMs: fromWall(wallOfDate(endDate), calendarZone),
      allDay: true,
    };
  }
  const startMs = parseRfc3339(start.dateTime ?? '');
  const endMs = parseRfc3339(end.dateTime ?? '');
  if (startMs === null || endMs === null) return null;
  return { startMs, endMs, allDay: false };
}

/** The instance-id suffix an original start time stands for. */
export function instanceKey(original: EventDateTime): string | null {
  if (original.date !== undefined) return compactDate(original.date);
  const ms = parseRfc3339(original.dateTime ?? '');
  return ms === null ? null : compactUtc(ms);
}

type Line = { name: string; params: Map<string, string>; value: string };

function parseLine(line: string): Line | null {
  const colon = line.indexOf(':');
  if (colon < 0) return null;
  const [name = '', ...rawParams] = line.slice(0, colon).split(';');
  const params = new Map<string, string>();
  for (const param of rawParams) {
    const eq = param.indexOf('=');
    if (eq > 0) params.set(param.slice(0, eq).toUpperCase(), param.slice(eq + 1).replace(/^"|"$/g, ''));
  }
  return { name: name.toUpperCase(), params, value: line.slice(colon + 1) };
}

type Moment = { wall: number; instant: number; dateOnly: boolean };

function parseMoment(text: string, tzid: string | undefined, zone: string): Moment | null {
  const m = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?$/.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, z] = m;
  const wall = Date.UTC(
    Number(y),
    Number(mo) - 1,
    Number(d),
    Number(h ?? 0),
    Number(mi ?? 0),
    Number(s ?? 0),
  );
  if (h === undefined) return { wall, instant: fromWall(wall, zone), dateOnly: true };
  if (z) return { wall: toWall(wall, zone), instant: wall, dateOnly: false };
  const inZone = tzid ?? zone;
  const instant = fromWall(wall, inZone);
  return { wall: toWall(instant, zone), instant, dateOnly: false };
}

export type ExpandLimits = {
  /** Stop once instances start at or after this instant. */
  until?: number;
  /** Most instances generated, whatever the window. */
  limit?: number;
};

/**
 * RFC 5545 expansion of a master's `recurrence` lines in its start zone (DST-correct through the wall
 * clock): RRULE, RDATE, EXDATE. EXRULE is deprecated and ignored, as Google does for new events.
 */
export function expandSeries(
  master: GoogleEvent,
  calendarZone: string,
  limits: ExpandLimits = {},
): Instance[] {
  const span = spanOf(master, calendarZone);
  const start = master.start;
  if (!span || !start) return [];
  const allDay = span.allDay;
  const zone = allDay ? calendarZone : (start.timeZone ?? calendarZone);
  const endZone = master.end?.timeZone ?? zone;
  const startWall = allDay ? wallOfDate(start.date!) : toWall(span.startMs, zone);
  const days = allDay
    ? Math.round((wallOfDate(master.end!.date ?? start.date!) - startWall) / MS_PER_DAY)
    : 0;
  const duration = span.endMs - span.startMs;
  const limit = limits.limit ?? 2000;
  const horizon = limits.until ?? Number.POSITIVE_INFINITY;

  const walls = new Map<string, number>();
  const exInstants = new Set<number>();
  const exDates = new Set<string>();
  const add = (wall: number) => {
    const key = allDay ? dateOfWall(wall) : String(fromWall(wall, zone));
    if (!walls.has(key)) walls.set(key, wall);
  };
  add(startWall);
  for (const raw of master.recurrence ?? []) {
    const line = parseLine(raw);
    if (!line) continue;
    if (line.name === 'RRULE') expandRule(line.value, startWall, allDay, zone, horizon, limit, add);
    if (line.name === 'RDATE' || line.name === 'EXDATE') {
      for (const value of line.value.split(',')) {
        const text = line.params.get('VALUE') === 'PERIOD' ? (value.split('/')[0] ?? '') : value;
        const moment = parseMoment(text, line.params.get('TZID'), zone);
        if (!moment) continue;
        if (line.name === 'RDATE') add(allDay ? wallOfDate(dateOfWall(moment.wall)) : moment.wall);
        else if (allDay || moment.dateOnly) exDates.add(dateOfWall(moment.wall));
        else exInstants.add(moment.instant);
      }
    }
  }

  const out: Instance[] = [];
  for (const wall of [...walls.values()].sort((a, b) => a - b)) {
    if (out.length >= limit) break;
    const date = dateOfWall(wall);
    if (allDay) {
      if (exDates.has(date)) continue;
      const startMs = fromWall(wall, calendarZone);
      if (startMs >= horizon) break;
      const endDate = dateOfWall(wall + Math.max(1, days) * MS_PER_DAY);
      out.push({
        key: compactDate(date),
        originalStartTime: { date },
        start: { date },
        end: { date: endDate },
        startMs,
        endMs: fromWall(wallOfDate(endDate), calendarZone),
      });
      continue;
    }
    const startMs = fromWall(wall, zone);
    if (startMs >= horizon) break;
    if (exInstants.has(startMs) || exDates.has(date)) continue;
    const at = { dateTime: formatInZone(startMs, zone), timeZone: zone };
    out.push({
      key: compactUtc(startMs),
      originalStartTime: at,
      start: at,
      end: { dateTime: formatInZone(startMs + duration, endZone), timeZone: endZone },
      startMs,
      endMs: startMs + duration,
    });
  }
  return out;
}

/**
 * ical.js compares UNTIL with the floating wall times it iterates, which is wrong by the zone's
 * offset for a UTC UNTIL; UNTIL is therefore taken out of the rule and applied here on instants.
 */
function expandRule(
  rule: string,
  startWall: number,
  allDay: boolean,
  zone: string,
  horizon: number,
  limit: number,
  add: (wall: number) => void,
): void {
  let untilMs = Number.POSITIVE_INFINITY;
  const parts = rule.split(';').filter((part) => {
    const [key, value = ''] = part.split('=');
    if (key?.toUpperCase() !== 'UNTIL') return true;
    const moment = parseMoment(value, undefined, zone);
    if (moment) untilMs = moment.dateOnly && !allDay ? moment.instant + MS_PER_DAY - 1000 : moment.instant;
    return false;
  });
  let recur: ICAL.Recur;
  try {
    recur = ICAL.Recur.fromString(parts.join(';'));
  } catch {
    return;
  }
  const d = new Date(startWall);
  const dtstart = ICAL.Time.fromData({
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    isDate: allDay,
  });
  const iterator = recur.iterator(dtstart);
  for (let n = 0; n < limit; n++) {
    const next = iterator.next();
    if (!next) return;
    const wall = Date.UTC(next.year, next.month - 1, next.day, next.hour, next.minute, next.second);
    const instant = fromWall(wall, zone);
    if (instant > untilMs || instant >= horizon) return;
    add(wall);
  }
}

import { errors } from './errors.js';
import { spanOf } from './recurrence.js';
import type { EventStore } from './store.js';
import { formatInZone, formatUtc, isZone, parseRfc3339 } from './time.js';
import type { Calendar } from './types.js';

type Period = { startMs: number; endMs: number };

/** Busy time of one calendar in [from, to): opaque, uncancelled events and instances, merged. */
function busyOf(store: EventStore, calendar: Calendar, from: number, to: number): Period[] {
  const periods: Period[] = [];
  for (const stored of calendar.events.values()) {
    const event = stored.body;
    if (stored.deleted || event.recurringEventId !== undefined) continue;
    const occurrences = event.recurrence?.length
      ? store.instances(calendar, event, { until: to, limit: 5000 })
      : [event];
    for (const occurrence of occurrences) {
      if (occurrence.status === 'cancelled' || occurrence.transparency === 'transparent') continue;
      const span = spanOf(occurrence, calendar.timeZone);
      if (!span || span.endMs <= from || span.startMs >= to) continue;
      periods.push({ startMs: Math.max(from, span.startMs), endMs: Math.min(to, span.endMs) });
    }
  }
  periods.sort((a, b) => a.startMs - b.startMs);
  const merged: Period[] = [];
  for (const period of periods) {
    const last = merged.at(-1);
    if (last && period.startMs <= last.endMs) last.endMs = Math.max(last.endMs, period.endMs);
    else merged.push({ ...period });
  }
  return merged;
}

/** freebusy.query: POST /freeBusy. */
export function queryFreeBusy(store: EventStore, body: Record<string, unknown>) {
  if (typeof body.timeMin !== 'string') throw errors.required('timeMin');
  if (typeof body.timeMax !== 'string') throw errors.required('timeMax');
  const from = parseRfc3339(body.timeMin);
  const to = parseRfc3339(body.timeMax);
  if (from === null) throw errors.badRequest('Bad Request', 'timeMin', 'badRequest');
  if (to === null) throw errors.badRequest('Bad Request', 'timeMax', 'badRequest');
  if (from >= to) throw errors.timeRangeEmpty();
  const zone = typeof body.timeZone === 'string' && isZone(body.timeZone) ? body.timeZone : 'UTC';
  const format = (ms: number) => (zone === 'UTC' ? formatUtc(ms) : formatInZone(ms, zone));
  const items = Array.isArray(body.items) ? (body.items as { id?: unknown }[]) : [];
  const calendars: Record<string, unknown> = {};
  for (const [index, item] of items.entries()) {
    const id = typeof item?.id === 'string' ? item.id : '';
    if (index >= 50) {
      calendars[id] = { busy: [], errors: [{ domain: 'global', reason: 'tooManyCalendarsRequested' }] };
      continue;
    }
    const calendar = store.calendars.get(id === 'primary' ? store.primaryId : id);
    if (!calendar) {
      calendars[id] = { busy: [], errors: [{ domain: 'global', reason: 'notFound' }] };
      continue;
    }
    calendars[id] = {
      busy: busyOf(store, calendar, from, to).map((p) => ({
        start: format(p.startMs),
        end: format(p.endMs),
      })),
    };
  }
  return { kind: 'calendar#freeBusy', timeMin: formatUtc(from), timeMax: formatUtc(to), calendars };
}

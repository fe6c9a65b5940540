import { createHash } from 'node:crypto';
import { errors } from './errors.js';
import { spanOf } from './recurrence.js';
import type { EventStore } from './store.js';
import { parseRfc3339 } from './time.js';
import type { Calendar, GoogleEvent, StoredEvent } from './types.js';

/** Knobs that make pages short or empty, as Google may do, while the listing stays complete. */
export type PagingKnobs = {
  /** Cap on items per page, below what the client asked for; null for none. */
  maxPageSize: number | null;
  /** Empty pages (carrying nextPageToken) served before every non-empty page. */
  emptyPages: number;
};

/** Instances per series when a listing has no timeMax to stop at. */
const OPEN_SERIES_LIMIT = 730;
const FORBIDDEN_WITH_SYNC = [
  'iCalUID',
  'orderBy',
  'privateExtendedProperty',
  'q',
  'sharedExtendedProperty',
  'timeMin',
  'timeMax',
  'updatedMin',
];

type SyncState = { c: string; s: number; g: number; se: boolean; mr: string | null; et: string };
type PageState = { h: string; s: number; after: number[] | null; e: number; t: number | null };
type Row = { key: number[]; event: GoogleEvent };

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function decode<T>(text: string): T | null {
  try {
    return JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as T;
  } catch {
    return null;
  }
}

function bool(query: URLSearchParams, name: string, fallback: boolean): boolean {
  const value = query.get(name);
  if (value === null) return fallback;
  if (value !== 'true' && value !== 'false') throw errors.badRequest(`Invalid boolean value: ${value}`, name);
  return value === 'true';
}

function pageSize(query: URLSearchParams): number {
  const raw = query.get('maxResults');
  if (raw === null) return 250;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw errors.badRequest('Invalid value for maxResults', 'maxResults');
  }
  return Math.min(value, 2500);
}

function instant(query: URLSearchParams, name: string): number | null {
  const raw = query.get(name);
  if (raw === null) return null;
  const value = parseRfc3339(raw);
  if (value === null) throw errors.badRequest('Bad Request', name, 'badRequest');
  return value;
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function paramsHash(query: URLSearchParams): string {
  const entries = [...query.entries()].filter(([k]) => k !== 'pageToken').sort();
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex').slice(0, 16);
}

/** What an incremental listing shows of a cancelled event that carries no details for the caller. */
function minimal(event: GoogleEvent): Partial<GoogleEvent> {
  return {
    kind: event.kind,
    etag: event.etag,
    id: event.id,
    status: 'cancelled',
    ...(event.recurringEventId === undefined
      ? {}
      : { recurringEventId: event.recurringEventId, originalStartTime: event.originalStartTime }),
  };
}

function matchesProperties(event: GoogleEvent, query: URLSearchParams): boolean {
  for (const [param, scope] of [
    ['privateExtendedProperty', 'private'],
    ['sharedExtendedProperty', 'shared'],
  ] as const) {
    for (const constraint of query.getAll(param)) {
      const eq = constraint.indexOf('=');
      if (eq < 0) throw errors.badRequest(`Invalid ${param} value`, param);
      if (event.extendedProperties?.[scope]?.[constraint.slice(0, eq)] !== constraint.slice(eq + 1)) {
        return false;
      }
    }
  }
  return true;
}

function overlaps(event: GoogleEvent, zone: string, min: number | null, max: number | null): boolean {
  if (min === null && max === null) return true;
  const span = spanOf(
    event.start ? event : { start: event.originalStartTime, end: event.originalStartTime },
    zone,
  );
  if (!span) return false;
  return (min === null || span.endMs > min) && (max === null || span.startMs < max);
}

/** events.list: full listings, incremental listings from a sync token, and expansion of series. */
export function listEvents(
  store: EventStore,
  calendar: Calendar,
  query: URLSearchParams,
  knobs: PagingKnobs,
) {
  const singleEvents = bool(query, 'singleEvents', false);
  const showDeleted = bool(query, 'showDeleted', false);
  const maxResults = pageSize(query);
  const timeMin = instant(query, 'timeMin');
  const timeMax = instant(query, 'timeMax');
  const updatedMin = instant(query, 'updatedMin');
  if (timeMin !== null && timeMax !== null && timeMin >= timeMax) throw errors.timeRangeEmpty();
  const orderBy = query.get('orderBy');
  if (orderBy !== null && orderBy !== 'startTime' && orderBy !== 'updated') {
    throw errors.badRequest(`Invalid value for orderBy: ${orderBy}`, 'orderBy');
  }
  if (orderBy === 'startTime' && !singleEvents) {
    throw errors.badRequest('The requested ordering is not available for the particular query.', 'orderBy');
  }
  const eventTypes = query.getAll('eventTypes').sort().join(',');

  const syncText = query.get('syncToken');
  let sync: SyncState | null = null;
  if (syncText !== null) {
    if (FORBIDDEN_WITH_SYNC.some((name) => query.has(name)) || query.get('showDeleted') === 'false') {
      throw errors.syncTokenRestrictions();
    }
    sync = decode<SyncState>(syncText);
    if (
      sync === null ||
      sync.c !== calendar.id ||
      sync.g !== calendar.generation ||
      typeof sync.s !== 'number' ||
      sync.s < calendar.purgedThrough
    ) {
      throw errors.fullSyncRequired();
    }
    if (sync.se !== singleEvents || sync.mr !== query.get('maxResults') || sync.et !== eventTypes) {
      throw errors.syncTokenRestrictions();
    }
  }

  const hash = paramsHash(query);
  const pageText = query.get('pageToken');
  const page = pageText === null ? null : decode<PageState>(pageText);
  if (pageText !== null && (page === null || page.h !== hash)) {
    throw errors.badRequest('Invalid page token value.', 'pageToken');
  }
  const snapshot = page?.s ?? store.seq;

  const rows: Row[] = [];
  const push = (stored: StoredEvent, event: GoogleEvent, key: number[]) => {
    if (!matchesProperties(event, query)) return;
    const iCalUID = query.get('iCalUID');
    if (iCalUID !== null && event.iCalUID !== iCalUID) return;
    const q = query.get('q')?.toLowerCase();
    if (q && ![event.summary, event.description, event.location].some((t) => t?.toLowerCase().includes(q))) {
      return;
    }
    if (event.status === 'cancelled' && sync !== null && !showDeleted) {
      rows.push({ key, event: minimal(event) as GoogleEvent });
      return;
    }
    rows.push({ key, event });
  };

  for (const stored of calendar.events.values()) {
    const event = stored.body;
    const inSync = sync !== null && stored.changeSeq > sync.s && stored.changeSeq <= snapshot;
    if (sync !== null && !inSync) continue;
    if (sync === null && stored.createdSeq > snapshot) continue;
    const updatedOk = updatedMin === null || Date.parse(event.updated ?? '') >= updatedMin;
    if (!updatedOk) continue;
    const cancelledVisible =
      sync !== null ||
      showDeleted ||
      updatedMin !== null ||
      (!stored.deleted && event.recurringEventId !== undefined && !singleEvents);
    if (event.status === 'cancelled' && !cancelledVisible) continue;
    const orderKey = (at: number) =>
      sync !== null
        ? [stored.changeSeq, at]
        : orderBy === 'updated'
          ? [Date.parse(event.updated ?? ''), stored.createdSeq, at]
          : orderBy === 'startTime'
            ? [at, stored.createdSeq]
            : [stored.createdSeq, at];
    if (singleEvents && event.recurrence?.length && !stored.deleted) {
      const until = timeMax ?? undefined;
      const instances = store.instances(calendar, event, { until, limit: OPEN_SERIES_LIMIT });
      for (const instance of instances) {
        if (instance.status === 'cancelled' && !cancelledVisible && !showDeleted) continue;
        if (!overlaps(instance, calendar.timeZone, timeMin, timeMax)) continue;
        push(stored, instance, orderKey(spanOf(instance, calendar.timeZone)?.startMs ?? 0));
      }
      continue;
    }
    if (singleEvents && event.recurringEventId !== undefined && sync === null) continue;
    if (sync === null && !masterOverlaps(store, calendar, event, timeMin, timeMax)) continue;
    push(stored, event, orderKey(spanOf(event, calendar.timeZone)?.startMs ?? 0));
  }
  rows.sort((a, b) => compareKeys(a.key, b.key));

  const remaining = page?.after ? rows.filter((row) => compareKeys(row.key, page.after!) > 0) : rows;
  const pending = page ? page.e : knobs.emptyPages;
  const envelope = {
    kind: 'calendar#events',
    etag: `"p${store.seq}"`,
    summary: calendar.summary,
    description: '',
    updated: new Date().toISOString(),
    timeZone: calendar.timeZone,
    accessRole: 'owner',
    defaultReminders: [],
  };
  const syncToken = () =>
    encode({
      c: calendar.id,
      s: snapshot,
      g: calendar.generation,
      se: singleEvents,
      mr: query.get('maxResults'),
      et: eventTypes,
    });
  const nextPage = (after: number[] | null, e: number) => encode({ h: hash, s: snapshot, after, e, t: null });
  if (remaining.length === 0) return { ...envelope, items: [], nextSyncToken: syncToken() };
  if (pending > 0) {
    return { ...envelope, items: [], nextPageToken: nextPage(page?.after ?? null, pending - 1) };
  }
  const size = Math.min(maxResults, knobs.maxPageSize ?? Number.POSITIVE_INFINITY);
  const items = remaining.slice(0, size);
  if (remaining.length > size) {
    return {
      ...envelope,
      items: items.map((row) => row.event),
      nextPageToken: nextPage(items.at(-1)!.key, knobs.emptyPages),
    };
  }
  return { ...envelope, items: items.map((row) => row.event), nextSyncToken: syncToken() };
}

function masterOverlaps(
  store: EventStore,
  calendar: Calendar,
  event: GoogleEvent,
  timeMin: number | null,
  timeMax: number | null,
): boolean {
  if (!event.recurrence?.length || (timeMin === null && timeMax === null)) {
    return overlaps(event, calendar.timeZone, timeMin, timeMax);
  }
  const until = timeMax ?? undefined;
  return store
    .instances(calendar, event, { until, limit: 5000 })
    .some(
      (instance) =>
        instance.status !== 'cancelled' && overlaps(instance, calendar.timeZone, timeMin, timeMax),
    );
}

/** events.instances: offset pages over the expanded series. */
export function listInstances(
  store: EventStore,
  calendar: Calendar,
  eventId: string,
  query: URLSearchParams,
) {
  const master = store.get(calendar, eventId);
  if (master.status === 'cancelled') throw errors.deleted();
  const showDeleted = bool(query, 'showDeleted', false);
  const maxResults = pageSize(query);
  const timeMin = instant(query, 'timeMin');
  const timeMax = instant(query, 'timeMax');
  if (timeMin !== null && timeMax !== null && timeMin >= timeMax) throw errors.timeRangeEmpty();
  const originalStart = query.get('originalStart');
  const all = master.recurrence?.length
    ? store.instances(calendar, master, { until: timeMax ?? undefined, limit: OPEN_SERIES_LIMIT })
    : [master];
  const items = all.filter(
    (event) =>
      (showDeleted || event.status !== 'cancelled') &&
      overlaps(event, calendar.timeZone, timeMin, timeMax) &&
      (originalStart === null ||
        parseRfc3339(event.originalStartTime?.dateTime ?? '') === parseRfc3339(originalStart) ||
        event.originalStartTime?.date === originalStart),
  );
  const offset = Number(query.get('pageToken') ?? '0') || 0;
  const slice = items.slice(offset, offset + maxResults);
  const more = offset + maxResults < items.length;
  return {
    kind: 'calendar#events',
    etag: `"p${store.seq}"`,
    summary: calendar.summary,
    timeZone: calendar.timeZone,
    accessRole: 'owner',
    defaultReminders: [],
    items: slice,
    ...(more ? { nextPageToken: String(offset + maxResults) } : {}),
  };
}

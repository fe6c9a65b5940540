import { findSlots, formatInstant, instantFormatter, type Interval, mergeBusy } from '../domain/index.js';
import { type BookableResource, loadBookableResources } from './bookable-resources.js';
import { type BusyRead, type BusyReader, type BusyTime, databaseBusy, loadLiveHolds } from './busy-index.js';
import type { Actor, ServiceDeps } from './context.js';
import { validationError } from './errors.js';

const MS_PER_DAY = 86_400_000;
export const MAX_WINDOW_DAYS = 92;
export const MAX_RESOURCES = 100;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Bookings just outside the window still matter: their buffers reach in, and free time that began
 * before the window anchors the slot grid. Two days each side covers the largest buffer (one day) and
 * the anchoring the domain does from the local midnight before the window.
 */
const READ_MARGIN_MS = 2 * MS_PER_DAY;

export function checkWindow(window: Interval, startField = 'start', endField = 'end'): void {
  if (window.end <= window.start) throw validationError(endField, `must be after ${startField}`);
  if (window.end - window.start > MAX_WINDOW_DAYS * MS_PER_DAY) {
    throw validationError(endField, `the window may span at most ${MAX_WINDOW_DAYS} days`);
  }
}

export function parseResourceIds(raw: string | readonly string[], field = 'resource_ids'): string[] {
  const ids = (typeof raw === 'string' ? raw.split(',') : [...raw]).map((id) => id.trim());
  if (ids.length === 0 || (ids.length === 1 && ids[0] === ''))
    throw validationError(field, 'name at least one resource');
  if (ids.length > MAX_RESOURCES)
    throw validationError(field, `at most ${MAX_RESOURCES} resources per request`);
  const seen = new Set<string>();
  ids.forEach((id, index) => {
    if (!UUID.test(id)) throw validationError(`${field}[${index}]`, 'must be a resource id (UUID)');
    if (seen.has(id.toLowerCase())) throw validationError(`${field}[${index}]`, 'is listed twice');
    seen.add(id.toLowerCase());
  });
  return ids.map((id) => id.toLowerCase());
}

export type AvailabilityRequest = {
  resourceIds: string[];
  window: Interval;
  durationMinutes: number;
  intervalMinutes?: number | undefined;
  mode: 'all' | 'any';
  /** When given, slots carry this zone's offset; otherwise they are in UTC with a Z. */
  timeZone?: string | undefined;
};

export type AvailabilityView = {
  time_zone: string;
  slots: { start_time: string; end_time: string; resource_ids: string[] }[];
};

/** What availability reads with: the process's busy index where there is one, else the database. */
export type AvailabilityDeps = ServiceDeps & { busy?: BusyReader | undefined };

export async function getAvailability(
  deps: AvailabilityDeps,
  actor: Actor,
  request: AvailabilityRequest,
): Promise<AvailabilityView> {
  checkWindow(request.window);
  const readBusy = (deps.busy ?? databaseBusy).begin(deps.db);
  const resources = await loadBookableResources(deps.db, actor, request.resourceIds);
  const readRange = {
    start: request.window.start - READ_MARGIN_MS,
    end: request.window.end + READ_MARGIN_MS,
  };
  const busy = await readBusyAndHolds(deps, readBusy, resources, readRange);
  const slots = findSlots(
    resources.map((resource) => ({
      resourceId: resource.resourceId,
      schedule: resource.schedule,
      bookings: busy.bookings.get(resource.resourceId) ?? [],
      calendarBusy: busy.calendar.get(resource.resourceId) ?? [],
    })),
    {
      window: request.window,
      durationMinutes: request.durationMinutes,
      intervalMinutes: request.intervalMinutes ?? request.durationMinutes,
      mode: request.mode,
      now: deps.clock(),
    },
  );
  const zone = request.timeZone;
  // A slot's end is often the next slot's start: each instant is formatted once.
  const formatted = new Map<number, string>();
  const formatInZone = instantFormatter(zone, readRange);
  const format = (at: number) => {
    let text = formatted.get(at);
    if (text === undefined) formatted.set(at, (text = formatInZone(at)));
    return text;
  };
  return {
    time_zone: zone ?? 'UTC',
    slots: slots.map((slot) => ({
      start_time: format(slot.start),
      end_time: format(slot.end),
      resource_ids: slot.resourceIds,
    })),
  };
}

export type FreeBusyView = {
  resources: Record<
    string,
    { busy: { start_time: string; end_time: string; source: 'booking' | 'calendar' }[] }
  >;
};

export async function getFreeBusy(
  deps: AvailabilityDeps,
  actor: Actor,
  request: { resourceIds: string[]; window: Interval },
): Promise<FreeBusyView> {
  checkWindow(request.window);
  const readBusy = (deps.busy ?? databaseBusy).begin(deps.db);
  const bookable = await loadBookableResources(deps.db, actor, request.resourceIds);
  const busy = await readBusyAndHolds(deps, readBusy, bookable, request.window);
  const resources: FreeBusyView['resources'] = {};
  for (const resourceId of request.resourceIds) {
    const booked = busy.bookings.get(resourceId) ?? [];
    resources[resourceId] = {
      busy: mergeBusy(booked, busy.calendar.get(resourceId) ?? [], request.window).map((block) => ({
        start_time: formatInstant(block.start),
        end_time: formatInstant(block.end),
        source: block.source,
      })),
    };
  }
  return { resources };
}

/**
 * Busy time with the live holds added, both read at once. Holds are read live, not kept in the busy
 * index, because a hold stops blocking when its time runs out, with no write to announce it. The
 * index's own lists are never changed.
 */
async function readBusyAndHolds(
  deps: AvailabilityDeps,
  readBusy: BusyRead,
  resources: readonly BookableResource[],
  range: Interval,
): Promise<BusyTime> {
  const ids = resources.map((resource) => resource.resourceId);
  const [busy, holds] = await Promise.all([
    readBusy(resources, range),
    loadLiveHolds(deps.db, ids, range, deps.clock()),
  ]);
  const bookings = new Map(busy.bookings);
  for (const [resourceId, held] of holds) {
    if (held.length === 0) continue;
    bookings.set(
      resourceId,
      [...(bookings.get(resourceId) ?? []), ...held].sort((a, b) => a.start - b.start),
    );
  }
  return { bookings, calendar: busy.calendar };
}

import { randomUUID } from 'node:crypto';
import { type Expression, type ExpressionBuilder, type SqlBool, sql } from 'kysely';
import type { Interval } from '../domain/index.js';
import { type CalendarBusyRead, loadCalendarBusy } from '../calendar/busy.js';
import { BUSY_STATUSES, type Database, type Db } from '../storage/database.js';
import type { DatabaseHandle } from '../storage/open-database.js';
import type { BookableResource } from './bookable-resources.js';

/** Where every change to a resource's busy time is announced (migration 2026-12-03-0001). */
export const BUSY_CHANNEL = 'sched_busy';
/** Busy time is kept in spans of 2^31 ms (about 24.9 days) per resource, each filled on first use. */
const BUCKET_MS = 2 ** 31;
/**
 * At most this many intervals (plus one per bucket) are kept in all, about 40 MB; the least recently
 * used resources go first.
 */
export const DEFAULT_MAX_INTERVALS = 1_000_000;
/** A barrier not back within this means the listener is not to be trusted: read the database. */
const BARRIER_TIMEOUT_MS = 1000;
const BARRIER = 'barrier:';

export type BusyTime = {
  bookings: Map<string, Interval[]>;
  calendar: Map<string, Interval[]>;
};

/** One request's read of busy time. */
export type BusyRead = (resources: readonly BookableResource[], range: Interval) => Promise<BusyTime>;

/**
 * Where a request reads busy time: `begin` is called as the request starts, so what the read needs
 * first (the index's barrier) runs while the request reads its resources.
 */
export type BusyReader = { begin(db: Db): BusyRead };

/** Straight from the database, every time. */
export const databaseBusy: BusyReader = {
  begin: (db) => (resources, range) => readBusyTime(db, resources, range),
};

export async function readBusyTime(
  db: Db,
  resources: readonly BookableResource[],
  range: Interval,
): Promise<BusyTime> {
  const ids = resources.map((resource) => resource.resourceId);
  const [bookings, calendar] = await Promise.all([
    loadBookingIntervals(db, ids, range),
    loadCalendarBusy(db, resources, range),
  ]);
  return { bookings, calendar };
}

/** Which rows of booking_resources an interval read takes. */
type RowFilter = (eb: ExpressionBuilder<Database, 'booking_resources'>) => Expression<SqlBool>;

/** The rows of these resources overlapping `range` that pass `rows`, sorted by start, per resource. */
async function loadIntervals(
  db: Db,
  resourceIds: readonly string[],
  range: Interval,
  rows: RowFilter,
): Promise<Map<string, Interval[]>> {
  const byResource = new Map<string, Interval[]>(resourceIds.map((id) => [id, []]));
  if (resourceIds.length === 0) return byResource;
  const found = await db
    .selectFrom('booking_resources')
    .select([
      'resource_id',
      sql<number>`(extract(epoch from lower(during)) * 1000)::float8`.as('start_ms'),
      sql<number>`(extract(epoch from upper(during)) * 1000)::float8`.as('end_ms'),
    ])
    .where('resource_id', 'in', resourceIds)
    .where(rows)
    .where(sql<boolean>`during && tstzrange(${new Date(range.start)}, ${new Date(range.end)}, '[)')`)
    .execute();
  for (const row of found) byResource.get(row.resource_id)?.push({ start: row.start_ms, end: row.end_ms });
  for (const list of byResource.values()) list.sort(byStart);
  return byResource;
}

/**
 * Pending and confirmed bookings of these resources overlapping `range`, sorted by start, per
 * resource. Holds are not kept here: they expire by the clock, so availability reads them live.
 */
export function loadBookingIntervals(
  db: Db,
  resourceIds: readonly string[],
  range: Interval,
): Promise<Map<string, Interval[]>> {
  return loadIntervals(db, resourceIds, range, (eb) => eb('status', 'in', BUSY_STATUSES));
}

/** Holds of these resources overlapping `range` that have not expired by `now`, the same way. */
export function loadLiveHolds(
  db: Db,
  resourceIds: readonly string[],
  range: Interval,
  now: number,
): Promise<Map<string, Interval[]>> {
  return loadIntervals(db, resourceIds, range, (eb) =>
    eb.and([eb('status', '=', 'held'), eb('expires_at', '>', new Date(now))]),
  );
}

const byStart = (a: Interval, b: Interval) => a.start - b.start;

type Kind = 'bookings' | 'calendar';

/** Intervals sorted by start, and the length of the longest. */
type Bucket = { sorted: readonly Interval[]; reach: number };

/** One resource's busy time, per bucket number, for each kind. */
type Entry = { bookings: Map<number, Bucket>; calendar: Map<number, Bucket>; size: number };

/** A fill in flight: what changed while it read cannot be kept, though this request may use it. */
type Fill = { resourceIds: ReadonlySet<string>; stale: Set<string>; allStale: boolean };

export type BusyIndexOptions = {
  db: Db;
  listen: DatabaseHandle['listen'];
  maxIntervals?: number;
};

/**
 * Each resource's busy time (bookings, and calendar busy time with series expanded past the stored
 * span), kept in memory in buckets filled on first use, so a request reads no rows once they are
 * filled. Buffers, schedules and notice are applied per request, as before.
 *
 * Fresh by construction, not by timing: every write to busy time notifies `sched_busy` (triggers),
 * and before it answers from memory a read sends a notification of its own through the database and
 * waits until the listener has it back. PostgreSQL delivers notifications in commit order, so by then
 * every change committed before the request began has dropped what it changed, in this process and
 * in every other. A listener that does not answer within a second, or that reconnected, empties the
 * memory; reads then go to the database until a barrier comes back again.
 *
 * Correctness never rests on it: the database refuses overlapping bookings whatever availability
 * showed.
 */
export class BusyIndex implements BusyReader {
  readonly #db: Db;
  readonly #listen: DatabaseHandle['listen'];
  readonly #maxIntervals: number;
  readonly #instance = randomUUID();
  /** In least recently used order: Map keeps insertion order, and a use moves the entry last. */
  readonly #entries = new Map<string, Entry>();
  readonly #fills = new Set<Fill>();
  readonly #barriers = new Map<string, (back: boolean) => void>();
  #size = 0;
  #barrierCount = 0;
  #unlisten: (() => Promise<void>) | undefined;
  /** False until the first barrier returns, and again after one that did not. */
  #trusted = false;
  #inflight: Promise<boolean> | undefined;
  #queued: Promise<boolean> | undefined;
  readonly stats = { hits: 0, fills: 0, direct: 0, invalidations: 0, evictions: 0 };

  constructor(options: BusyIndexOptions) {
    this.#db = options.db;
    this.#listen = options.listen;
    this.#maxIntervals = options.maxIntervals ?? DEFAULT_MAX_INTERVALS;
  }

  /** Listens; on the embedded database this must happen before anything else runs. */
  async start(): Promise<void> {
    this.#unlisten = await this.#listen(BUSY_CHANNEL, (payload) => this.#onNotify(payload));
    this.#trusted = await this.#barrier();
  }

  async close(): Promise<void> {
    await this.#unlisten?.();
    this.#unlisten = undefined;
    this.clear();
    // A barrier still out is answered as lost: its request reads the database.
    for (const release of this.#barriers.values()) release(false);
  }

  /** How many intervals are kept now, plus one per bucket. */
  get size(): number {
    return this.#size;
  }

  begin(db: Db): BusyRead {
    if (db !== this.#db) return (resources, range) => readBusyTime(db, resources, range);
    const fresh = this.#fresh();
    return async (resources, range) => this.#read(resources, range, await fresh);
  }

  /** One read on its own: the barrier, then memory. */
  read(resources: readonly BookableResource[], range: Interval): Promise<BusyTime> {
    return this.begin(this.#db)(resources, range);
  }

  async #read(resources: readonly BookableResource[], range: Interval, fresh: boolean): Promise<BusyTime> {
    if (!fresh) {
      this.stats.direct++;
      return readBusyTime(this.#db, resources, range);
    }
    const first = Math.floor(range.start / BUCKET_MS);
    const last = Math.floor((range.end - 1) / BUCKET_MS);
    const span = { start: first * BUCKET_MS, end: (last + 1) * BUCKET_MS };
    const withCalendars = resources.filter((resource) => resource.hasBlockingCalendars);
    const [bookings, calendar] = await Promise.all([
      this.#collect(
        'bookings',
        resources.map((resource) => resource.resourceId),
        range,
        first,
        last,
        async (ids) => ({ busy: await loadBookingIntervals(this.#db, ids, span), complete: true }),
      ),
      this.#collect(
        'calendar',
        withCalendars.map((resource) => resource.resourceId),
        range,
        first,
        last,
        async (ids) => {
          const read: CalendarBusyRead = { complete: true };
          const wanted = new Set(ids);
          const busy = await loadCalendarBusy(
            this.#db,
            withCalendars.filter((resource) => wanted.has(resource.resourceId)),
            span,
            read,
          );
          for (const list of busy.values()) list.sort(byStart);
          return { busy, complete: read.complete };
        },
      ),
    ]);
    for (const resource of resources) {
      if (!calendar.has(resource.resourceId)) calendar.set(resource.resourceId, []);
    }
    return { bookings, calendar };
  }

  /** Drops what is kept for one resource; a fill reading it meanwhile is not kept either. */
  invalidate(resourceId: string): void {
    this.stats.invalidations++;
    for (const fill of this.#fills) if (fill.resourceIds.has(resourceId)) fill.stale.add(resourceId);
    const entry = this.#entries.get(resourceId);
    if (!entry) return;
    this.#size -= entry.size;
    this.#entries.delete(resourceId);
  }

  clear(): void {
    for (const fill of this.#fills) fill.allStale = true;
    this.#entries.clear();
    this.#size = 0;
  }

  #onNotify(payload: string | undefined): void {
    if (payload === undefined) {
      // The listener was away: whatever changed meanwhile went unheard.
      this.clear();
      this.#trusted = false;
      return;
    }
    if (payload.startsWith(BARRIER)) {
      this.#barriers.get(payload)?.(true);
      return;
    }
    this.invalidate(payload);
  }

  /**
   * Whether memory may answer a request that began now. Requests arriving while a barrier is out
   * share the next one, so a burst costs two notifications, not one each.
   */
  async #fresh(): Promise<boolean> {
    if (!this.#unlisten) return false;
    if (!this.#trusted) {
      // Probe in the background; until a barrier returns, the database answers.
      void this.#shared().then((back) => {
        if (back && !this.#trusted) {
          this.clear();
          this.#trusted = true;
        }
      });
      return false;
    }
    const back = await this.#shared();
    if (!back && this.#trusted) {
      this.#trusted = false;
      this.clear();
    }
    return back && this.#trusted;
  }

  #shared(): Promise<boolean> {
    if (this.#queued) return this.#queued;
    if (!this.#inflight) return this.#send();
    this.#queued = this.#inflight.then(() => {
      this.#queued = undefined;
      return this.#send();
    });
    return this.#queued;
  }

  #send(): Promise<boolean> {
    const sent = this.#barrier().finally(() => {
      if (this.#inflight === sent) this.#inflight = undefined;
    });
    this.#inflight = sent;
    return sent;
  }

  async #barrier(): Promise<boolean> {
    const token = `${BARRIER}${this.#instance}:${++this.#barrierCount}`;
    let timer: NodeJS.Timeout | undefined;
    const back = new Promise<boolean>((resolve) => {
      this.#barriers.set(token, resolve);
      timer = setTimeout(() => resolve(false), BARRIER_TIMEOUT_MS);
    });
    try {
      await sql`select pg_notify(${BUSY_CHANNEL}, ${token})`.execute(this.#db);
      return await back;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      this.#barriers.delete(token);
    }
  }

  /** Each resource's intervals over buckets first..last: from memory, the missing ones read in one go. */
  async #collect(
    kind: Kind,
    resourceIds: readonly string[],
    range: Interval,
    first: number,
    last: number,
    read: (ids: string[]) => Promise<{ busy: Map<string, Interval[]>; complete: boolean }>,
  ): Promise<Map<string, Interval[]>> {
    const result = new Map<string, Interval[]>();
    const missing: string[] = [];
    for (const id of resourceIds) {
      const entry = this.#entries.get(id);
      const buckets = entry?.[kind];
      const kept: Bucket[] = [];
      for (let bucket = first; buckets && bucket <= last; bucket++) {
        const found = buckets.get(bucket);
        if (!found) break;
        kept.push(found);
      }
      if (kept.length === last - first + 1) {
        result.set(id, gather(kept, first, range));
        this.#touch(id, entry!);
      } else {
        missing.push(id);
      }
    }
    this.stats.hits += resourceIds.length - missing.length;
    if (missing.length === 0) return result;
    this.stats.fills += missing.length;
    const fill: Fill = { resourceIds: new Set(missing), stale: new Set(), allStale: false };
    this.#fills.add(fill);
    let loaded: { busy: Map<string, Interval[]>; complete: boolean };
    try {
      loaded = await read(missing);
    } finally {
      this.#fills.delete(fill);
    }
    for (const id of missing) {
      const list = loaded.busy.get(id) ?? [];
      result.set(
        id,
        list.filter((interval) => interval.start < range.end && interval.end > range.start),
      );
      if (loaded.complete && !fill.allStale && !fill.stale.has(id)) this.#keep(kind, id, list, first, last);
    }
    return result;
  }

  #keep(kind: Kind, resourceId: string, sorted: readonly Interval[], first: number, last: number): void {
    if (sorted.length > this.#maxIntervals / 4) return;
    let entry = this.#entries.get(resourceId);
    if (!entry) {
      entry = { bookings: new Map(), calendar: new Map(), size: 0 };
      this.#entries.set(resourceId, entry);
    }
    const buckets = entry[kind];
    for (let bucket = first; bucket <= last; bucket++) {
      const start = bucket * BUCKET_MS;
      const end = start + BUCKET_MS;
      const list = sorted.filter((interval) => interval.start < end && interval.end > start);
      let reach = 0;
      for (const interval of list) reach = Math.max(reach, interval.end - interval.start);
      // Each bucket counts one more than its intervals, so empty ones are bounded too.
      const previous = buckets.get(bucket);
      const change = list.length + 1 - (previous ? previous.sorted.length + 1 : 0);
      buckets.set(bucket, { sorted: list, reach });
      entry.size += change;
      this.#size += change;
    }
    this.#touch(resourceId, entry);
    this.#evict(resourceId);
  }

  #touch(resourceId: string, entry: Entry): void {
    this.#entries.delete(resourceId);
    this.#entries.set(resourceId, entry);
  }

  #evict(keep: string): void {
    for (const [id, entry] of this.#entries) {
      if (this.#size <= this.#maxIntervals) return;
      if (id === keep) continue;
      this.#entries.delete(id);
      this.#size -= entry.size;
      this.stats.evictions++;
    }
  }
}

/** The first index of `sorted` whose start is at or after `at`. */
function firstStartingAt(sorted: readonly Interval[], at: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]!.start < at) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The intervals overlapping `range`, in order, from consecutive buckets (each sorted by start). An
 * interval crossing into a bucket is in the one before it too, so from the second bucket on only those
 * starting inside it are taken; `reach` is the longest interval kept, so nothing that starts before
 * `range` and still overlaps it is missed.
 */
function gather(buckets: readonly Bucket[], first: number, range: Interval): Interval[] {
  const out: Interval[] = [];
  for (let k = 0; k < buckets.length; k++) {
    const { sorted, reach } = buckets[k]!;
    const bucketStart = (first + k) * BUCKET_MS;
    const from = firstStartingAt(sorted, Math.max(k === 0 ? -Infinity : bucketStart, range.start - reach));
    const to = firstStartingAt(sorted, range.end);
    for (let i = from; i < to; i++) {
      const interval = sorted[i]!;
      if (interval.end > range.start) out.push(interval);
    }
  }
  return out;
}

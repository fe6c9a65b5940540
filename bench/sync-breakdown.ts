import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { CalendarProvider, ChangeStream, KnownEvents } from '../src/calendar/port/provider.js';
import type { StoredObject } from '../src/calendar/parsing/expand.js';
import { storageLimits, storeObjects } from '../src/calendar/store/events.js';
import type { Db } from '../src/storage/database.js';

/**
 * One listing a sync read: from its first request to its end (the sync stores pages meanwhile, so
 * this overlaps storing), and how long the provider worked on its pages (fetching and converting,
 * from each page asked for to it handed over).
 */
export type TimedListing = { started: number; ended: number; pages: number; working: number };

/** The provider, with every readChanges (how a sync reads) timed and handed to `onListing` as it starts. */
export function timedProvider(
  provider: CalendarProvider,
  onListing: (listing: TimedListing) => void,
): CalendarProvider {
  const timed = (cursor: string | null, known: KnownEvents): ChangeStream => {
    const stream = provider.readChanges(cursor, known);
    const listing: TimedListing = { started: Number.NaN, ended: Number.NaN, pages: 0, working: 0 };
    onListing(listing);
    return (async function* (): ChangeStream {
      listing.started = performance.now();
      try {
        for (;;) {
          const asked = performance.now();
          const step = await stream.next();
          listing.working += performance.now() - asked;
          if (step.done) return step.value;
          listing.pages++;
          yield step.value;
        }
      } finally {
        listing.ended = performance.now();
      }
    })();
  };
  return new Proxy(provider, {
    get(target, key) {
      if (key === 'readChanges') return timed;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Parts as the sync stores them: at most this many objects or about this many occurrences each. */
const PART_OBJECTS = 200;
const PART_OCCURRENCES = 5000;

/**
 * Storing alone, `rounds` times: the objects, already expanded, written by the sync's own
 * `storeObjects` in parts like the sync's, each time for a new connection (made by `connect`, which
 * returns its id) that holds nothing yet; the connection is deleted again (not timed).
 */
export async function timeStoring(
  db: Db,
  connect: () => Promise<string>,
  objects: readonly StoredObject[],
  now: number,
  rounds = 3,
): Promise<number[]> {
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const id = await connect();
    const connection = await db
      .selectFrom('calendar_connections')
      .selectAll()
      .where('connection_id', '=', id)
      .executeTakeFirstOrThrow();
    const started = performance.now();
    let part: StoredObject[] = [];
    let occurrences = 0;
    const store = async () => {
      await storeObjects(db, connection, part, now, storageLimits('postgres'), { fresh: true });
      part = [];
      occurrences = 0;
    };
    for (const object of objects) {
      part.push(object);
      occurrences += object.result.ok ? object.result.occurrences.length : 0;
      if (part.length >= PART_OBJECTS || occurrences >= PART_OCCURRENCES) await store();
    }
    if (part.length > 0) await store();
    times.push(performance.now() - started);
    await db.deleteFrom('calendar_connections').where('connection_id', '=', id).execute();
    await sql`vacuum analyze calendar_events, calendar_occurrences`.execute(db);
  }
  return times;
}

/** Where one sync's time went: before its listing, the listing (storing meanwhile), and after it. */
export type SyncPhases = { before: number; listing: number; working: number; pages: number; after: number };

export function syncPhases(started: number, ms: number, listing: TimedListing | undefined): SyncPhases {
  if (!listing) return { before: ms, listing: 0, working: 0, pages: 0, after: 0 };
  return {
    before: listing.started - started,
    listing: listing.ended - listing.started,
    working: listing.working,
    pages: listing.pages,
    after: started + ms - listing.ended,
  };
}

export function describePhases(phases: readonly SyncPhases[]): string {
  const list = (pick: (phase: SyncPhases) => number) =>
    phases.map((phase) => (pick(phase) / 1000).toFixed(2)).join(', ');
  return (
    `before the listing (lease, push, known events) ${list((p) => p.before)} s; the listing, ` +
    `${phases[0]?.pages ?? 0} pages stored as they came, ${list((p) => p.listing)} s, of which the ` +
    `provider worked on its pages (fetching and converting, while the sync stored) ` +
    `${list((p) => p.working)} s; after its end (the last pages stored, bookkeeping) ${list((p) => p.after)} s`
  );
}

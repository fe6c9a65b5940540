import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import type { DatabaseHandle, DatabaseKind } from '../storage/open-database.js';
import type { Authenticated } from './api-keys.js';

/** The trigger of migration 2026-12-03-0002 NOTIFYs here with the id of every key changed or deleted. */
export const API_KEYS_CHANNEL = 'sched_api_keys';
export const API_KEY_CACHE_ENTRIES = 10_000;
/** A backstop: a key is read again this long after it was verified, notified or not. */
export const API_KEY_CACHE_MAX_AGE_MS = 60_000;
/** How often a process NOTIFYs itself on PostgreSQL, to learn that its listening connection still delivers. */
export const LISTENER_PROBE_MS = 250;
/**
 * With nothing heard for this long, the listening connection may be gone (and a revocation with it):
 * the cache is not used until notifications arrive again.
 */
export const LISTENER_SILENCE_MS = 1000;
/** The probe's payload; the trigger's payloads are key ids (or empty). */
const PROBE = 'probe';

type Entry = { found: Authenticated; verifiedAt: number };

/** What a read of the database must show the cache to be kept: nothing was invalidated meanwhile. */
export type FillTicket = { generation: number };

/**
 * Keys verified against the database, by the SHA-256 of the key (the key itself is never kept), in
 * least-recently-used order. Entries are dropped when a notification names their key, all at once when
 * notifications may have been missed, and are not served at all while the listener is silent.
 */
export class ApiKeyCache {
  readonly #entries = new Map<string, Entry>();
  /** api_key_id → key hash, to drop an entry by the id a notification carries. */
  readonly #hashById = new Map<string, string>();
  #generation = 0;
  #heardAt = -Infinity;

  constructor(
    private readonly options: {
      maxEntries?: number;
      maxAgeMs?: number;
      /** Left out, notifications are assumed to arrive (an in-process database's cannot be lost). */
      silenceMs?: number;
      now?: () => number;
    } = {},
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  #now(): number {
    return (this.options.now ?? performance.now.bind(performance))();
  }

  /** Whether notifications can be trusted to have reached this process up to now. */
  #listening(): boolean {
    const silence = this.options.silenceMs;
    return silence === undefined ? this.#heardAt > -Infinity : this.#now() - this.#heardAt < silence;
  }

  get(keyHash: string): Authenticated | undefined {
    const entry = this.#entries.get(keyHash);
    if (!entry) return undefined;
    if (!this.#listening()) return undefined;
    if (this.#now() - entry.verifiedAt >= (this.options.maxAgeMs ?? API_KEY_CACHE_MAX_AGE_MS)) {
      this.#drop(keyHash, entry);
      return undefined;
    }
    // Most recently used last: Map keeps insertion order, so the first entry is the one to evict.
    this.#entries.delete(keyHash);
    this.#entries.set(keyHash, entry);
    return entry.found;
  }

  /** Taken before the database is read; fill() keeps the result only if nothing changed since. */
  ticket(): FillTicket | undefined {
    return this.#listening() ? { generation: this.#generation } : undefined;
  }

  fill(keyHash: string, found: Authenticated, ticket: FillTicket | undefined): void {
    if (!ticket || ticket.generation !== this.#generation || !this.#listening()) return;
    const previous = this.#entries.get(keyHash);
    if (previous) this.#drop(keyHash, previous);
    this.#entries.set(keyHash, { found, verifiedAt: this.#now() });
    this.#hashById.set(found.apiKeyId, keyHash);
    const max = this.options.maxEntries ?? API_KEY_CACHE_ENTRIES;
    while (this.#entries.size > max) {
      const [oldest, entry] = this.#entries.entries().next().value as [string, Entry];
      this.#drop(oldest, entry);
    }
  }

  /**
   * A notification: the id of a changed key drops that key, an empty payload (TRUNCATE) drops all,
   * and `undefined` (the listener reconnected, notifications may be lost) drops all too.
   */
  notify(payload: string | undefined): void {
    this.#heardAt = this.#now();
    if (payload === PROBE) return;
    if (payload) {
      this.forget(payload);
      return;
    }
    this.#generation++;
    this.clear();
  }

  /** A change this process made itself: dropped at once, without waiting for its notification. */
  forget(apiKeyId: string): void {
    this.#generation++;
    const keyHash = this.#hashById.get(apiKeyId);
    const entry = keyHash === undefined ? undefined : this.#entries.get(keyHash);
    if (keyHash !== undefined && entry) this.#drop(keyHash, entry);
  }

  clear(): void {
    this.#entries.clear();
    this.#hashById.clear();
  }

  #drop(keyHash: string, entry: Entry): void {
    this.#entries.delete(keyHash);
    if (this.#hashById.get(entry.found.apiKeyId) === keyHash) this.#hashById.delete(entry.found.apiKeyId);
  }
}

/** The caches of the apps of this process, by the database they read, for forgetApiKey. */
const cachesOf = new WeakMap<Db, Set<ApiKeyCache>>();

/**
 * Called by the service that changed a key, after its commit: the apps of this process on the same
 * database drop the key before the change is even answered. Other processes learn it from the
 * trigger's notification.
 */
export function forgetApiKey(db: Db, apiKeyId: string): void {
  for (const cache of cachesOf.get(db) ?? []) cache.forget(apiKeyId);
}

export type ApiKeyCacheHandle = { cache: ApiKeyCache; stop(): Promise<void> };

/**
 * Listens for key changes and, on PostgreSQL, probes the listening connection: a notification sent by
 * this process comes back every LISTENER_PROBE_MS while the connection delivers, and the cache is
 * bypassed after LISTENER_SILENCE_MS without one, so a lost connection never serves a stale entry
 * for longer than that (a revocation committed meanwhile is then read from the database).
 */
export async function startApiKeyCache(options: {
  db: Db;
  databaseKind: DatabaseKind;
  listen: DatabaseHandle['listen'];
}): Promise<ApiKeyCacheHandle> {
  const probing = options.databaseKind === 'postgres';
  const cache = new ApiKeyCache(probing ? { silenceMs: LISTENER_SILENCE_MS } : {});
  const unlisten = await options.listen(API_KEYS_CHANNEL, (payload) => cache.notify(payload));
  const siblings = cachesOf.get(options.db) ?? new Set<ApiKeyCache>();
  cachesOf.set(options.db, siblings.add(cache));
  // Listening from now on: what was read before this point is not in the cache anyway.
  cache.notify(PROBE);
  let timer: NodeJS.Timeout | undefined;
  let probe: Promise<unknown> = Promise.resolve();
  if (probing) {
    let inFlight = false;
    timer = setInterval(() => {
      if (inFlight) return;
      inFlight = true;
      probe = sql`select pg_notify(${API_KEYS_CHANNEL}, ${PROBE})`
        .execute(options.db)
        .catch(() => undefined)
        .finally(() => (inFlight = false));
    }, LISTENER_PROBE_MS);
    timer.unref();
  }
  return {
    cache,
    stop: async () => {
      if (timer) clearInterval(timer);
      siblings.delete(cache);
      await probe;
      await unlisten();
      cache.clear();
    },
  };
}

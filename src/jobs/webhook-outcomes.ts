import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import type { Db } from '../storage/database.js';

/** What one attempt leaves on its delivery row. */
export type DeliveryRecord = {
  deliveryId: string;
  /** The attempt count the claim set: the row is written only while it still holds it. */
  attempts: number;
  status: 'pending' | 'succeeded' | 'failed';
  /** Milliseconds since the epoch, as the two below. */
  nextAttemptAt: number | null;
  attemptedAt: number;
  statusCode: number | null;
  latencyMs: number;
  excerpt: string | null;
  error: string | null;
};

export type OutcomeBatcherOptions = {
  db: Db;
  /** Most records one statement writes; this many waiting are written at once. */
  maxBatch: number;
  /** How long the first record waiting may wait for others before they are written. */
  delayMs: number;
  logger?: FastifyBaseLogger | undefined;
};

type Waiting = { record: DeliveryRecord; settle: (written: boolean) => void; fail: (error: unknown) => void };

/**
 * Writes the delivery rows of attempts that end close together in one statement (an UPDATE joined to
 * the `unnest` of one array a column), after `delayMs` or once `maxBatch` are waiting. Each record's promise says whether
 * it was written: false when the row's attempt count moved on (a process whose lease ran out must not
 * overwrite its successor). A statement that fails rejects its records; their leases then run out and
 * the deliveries are sent again, at least once as before.
 */
export class OutcomeBatcher {
  readonly #o: OutcomeBatcherOptions;
  #waiting: Waiting[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** Closing: every record is written as it comes. */
  #closing = false;
  readonly #writing = new Set<Promise<void>>();

  constructor(options: OutcomeBatcherOptions) {
    this.#o = options;
  }

  /** Queues a record; resolves once it is written (true) or found superseded (false). */
  add(record: DeliveryRecord): Promise<boolean> {
    return new Promise<boolean>((settle, fail) => {
      this.#waiting.push({ record, settle, fail });
      if (this.#closing || this.#waiting.length >= this.#o.maxBatch) this.flush();
      else this.#timer ??= setTimeout(() => this.flush(), this.#o.delayMs);
    });
  }

  /** Starts writing everything waiting now, without waiting for the timer. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.#o.maxBatch);
      const writing = this.#write(batch).finally(() => this.#writing.delete(writing));
      this.#writing.add(writing);
    }
  }

  /**
   * Writes everything waiting, and from now on every record as it comes; returns once every statement
   * under way has finished.
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.flush();
    while (this.#writing.size > 0) await Promise.allSettled([...this.#writing]);
  }

  async #write(batch: Waiting[]): Promise<void> {
    try {
      const written = await writeRecords(
        this.#o.db,
        batch.map((entry) => entry.record),
      );
      for (const entry of batch) entry.settle(written.has(entry.record.deliveryId));
    } catch (error) {
      this.#o.logger?.error(
        { err: error, deliveries: batch.length },
        'recording webhook deliveries failed; they are sent again once their leases run out',
      );
      for (const entry of batch) entry.fail(error);
    }
  }
}

/**
 * One statement for any number of records; returns the ids of the rows it wrote. Its text is the same
 * whatever the count: each column is one array parameter, turned into rows by `unnest`, so building
 * it costs a join of strings per column rather than nine parameters a row.
 */
export async function writeRecords(db: Db, records: readonly DeliveryRecord[]): Promise<Set<string>> {
  if (records.length === 0) return new Set();
  const n = records.length;
  const ids = new Array<string>(n);
  const attempts = new Array<number>(n);
  const statuses = new Array<string>(n);
  const nextAttempts = new Array<number | null>(n);
  const attemptedAts = new Array<number>(n);
  const statusCodes = new Array<number | null>(n);
  const latencies = new Array<number>(n);
  const excerpts = new Array<string | null>(n);
  const errors = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    ids[i] = r.deliveryId;
    attempts[i] = r.attempts;
    statuses[i] = r.status;
    nextAttempts[i] = r.nextAttemptAt;
    attemptedAts[i] = r.attemptedAt;
    statusCodes[i] = r.statusCode;
    latencies[i] = r.latencyMs;
    excerpts[i] = r.excerpt;
    errors[i] = r.error;
  }
  // Instants as milliseconds since the epoch (exact in float8), turned back by to_timestamp.
  const { rows } = await sql<{ delivery_id: string }>`
    update webhook_deliveries d
    set status = v.status, next_attempt_at = to_timestamp(v.next_attempt_ms / 1000), lease_until = null,
      last_attempt_at = to_timestamp(v.attempted_ms / 1000), last_status_code = v.status_code,
      last_latency_ms = v.latency_ms, last_response_excerpt = v.excerpt, last_error = v.error,
      updated_at = to_timestamp(v.attempted_ms / 1000)
    from unnest(${plainArray(ids)}::uuid[], ${plainArray(attempts)}::int[], ${plainArray(statuses)}::text[],
        ${plainArray(nextAttempts)}::float8[], ${plainArray(attemptedAts)}::float8[],
        ${plainArray(statusCodes)}::int[], ${plainArray(latencies)}::int[], ${textArray(excerpts)}::text[],
        ${textArray(errors)}::text[])
      as v(delivery_id, attempts, status, next_attempt_ms, attempted_ms, status_code, latency_ms, excerpt, error)
    where d.delivery_id = v.delivery_id and d.attempts = v.attempts
    returning d.delivery_id`.execute(db);
  return new Set(rows.map((row) => row.delivery_id));
}

/** An array literal of values that need no quoting: numbers, uuids, the status words. */
function plainArray(values: readonly (number | string | null)[]): string {
  let text = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i] ?? null;
    text += (i === 0 ? '' : ',') + (value === null ? 'NULL' : String(value));
  }
  return `${text}}`;
}

/**
 * An array literal of any text: each element quoted, `"` and `\\` escaped, NUL left out (PostgreSQL
 * text cannot hold it, and a receiver's answer may).
 */
function textArray(values: readonly (string | null)[]): string {
  let text = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i] ?? null;
    text +=
      (i === 0 ? '' : ',') +
      (value === null ? 'NULL' : `"${value.replace(/["\\]/g, '\\$&').replaceAll('\0', '')}"`);
  }
  return `${text}}`;
}

/**
 * Hands claimed deliveries back unsent: the lease is cleared and the attempt the claim counted is
 * taken back, on rows that still hold this claim's attempt count.
 */
export async function releaseClaims(
  db: Db,
  claims: readonly { delivery_id: string; attempts: number }[],
  now: Date,
): Promise<void> {
  if (claims.length === 0) return;
  const ids = plainArray(claims.map((claim) => claim.delivery_id));
  const attempts = plainArray(claims.map((claim) => claim.attempts));
  await sql`
    update webhook_deliveries d set lease_until = null, attempts = d.attempts - 1, updated_at = ${now}
    from unnest(${ids}::uuid[], ${attempts}::int[]) as v(delivery_id, attempts)
    where d.delivery_id = v.delivery_id and d.attempts = v.attempts`.execute(db);
}

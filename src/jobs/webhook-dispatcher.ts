import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import type { Dispatcher } from 'undici';
import { classifyAttempt, type DeliveryOutcome, DISABLE_AFTER_FAILING_MS } from '../domain/webhook-retry.js';
import { type OutboundGuard, OutboundRefusedError } from '../integrations/index.js';
import type { SecretBox } from '../security/secret-box.js';
import type { Clock } from '../services/context.js';
import { maskedWebhookUrl } from '../services/webhooks.js';
import type { Db } from '../storage/database.js';
import { type DeliveryRecord, OutcomeBatcher, releaseClaims, writeRecords } from './webhook-outcomes.js';
import { signWebhook, webhookSigningKey } from './webhook-signature.js';

export type WebhookDispatcherOptions = {
  db: Db;
  clock: Clock;
  secretBox: SecretBox;
  guard: OutboundGuard;
  logger?: FastifyBaseLogger | undefined;
  /** Per attempt, connect to last byte; the contract says 15 s. */
  timeoutMs?: number;
  /** How long a claimed delivery is ours; a worker that dies holding one frees it when this runs out. */
  leaseMs?: number;
  /** Most deliveries in flight at once; also the most one round of runOnce claims. */
  concurrency?: number;
  /** How long a finished attempt may wait for others to be recorded in the same statement. */
  recordDelayMs?: number;
  /** Most outcomes one statement records; this many waiting are recorded at once. */
  recordBatchSize?: number;
  pollIntervalMs?: number;
  random?: () => number;
  onOutcome?: (outcome: string) => void;
  /** Called each time the dispatcher finds nothing more due and waits for a wake-up or its poll. */
  onIdle?: () => void;
};

/**
 * One row of a claim's answer, which holds three kinds: a claimed delivery (delivery_id set), a
 * subscription the claim's deliveries go to (secret_sealed set), an event they carry (payload set).
 * What deliveries share comes once per claim, not once per delivery.
 */
type ClaimRow = {
  delivery_id: string | null;
  attempts: number | null;
  webhook_id: string | null;
  event_id: string | null;
  payload: string | null;
  /** Masked; the URL itself is in url_sealed, except on rows not yet sealed. */
  url: string | null;
  url_sealed: string | null;
  secret_sealed: string | null;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Date | null;
  failing_since: Date | null;
};

/** Where a subscription's deliveries go and what signs them, opened from its sealed columns. */
type Target = {
  origin: string;
  path: string;
  /** The signing keys: the current secret's, then the previous one's (used until it expires). */
  keys: Buffer[];
};

/**
 * A subscription as one claim's deliveries to it share it. Its secrets are opened (and its URL
 * checked) when the first of them is sent, and the opened keys are wiped once the last is signed or
 * handed back: an opened secret lives no longer than the claim.
 */
type Subscription = {
  webhookId: string;
  url: string;
  urlSealed: string | null;
  secretSealed: string;
  previousSecretSealed: string | null;
  previousSecretExpiresAt: number;
  failingSince: Date | null;
  /** Opened on first use; or why it could not be, said to every delivery of the claim. */
  target: Target | Error | undefined;
  /** This claim's deliveries to it not yet signed or handed back. */
  unsigned: number;
};

/** A claimed delivery, with its lease, its event's body and its claim's view of its subscription. */
type Delivery = {
  delivery_id: string;
  attempts: number;
  body: Buffer;
  subscription: Subscription;
  leaseUntil: number;
};

type AttemptResult = {
  statusCode: number | null;
  latencyMs: number;
  excerpt: string | null;
  error: string | null;
};

const EXCERPT_CHARS = 512;
/**
 * How often an idle dispatcher looks for due deliveries. New deliveries wake it at once through
 * LISTEN/NOTIFY (see compose.ts), so the poll only finds retries coming due, expired leases and
 * anything a dropped listener missed.
 */
export const DEFAULT_POLL_INTERVAL_MS = 1000;

/** Deliveries in flight at once, by default. */
export const DEFAULT_CONCURRENCY = 16;

/**
 * A finished attempt waits at most this long to be recorded together with the ones finishing after
 * it. Its lease holds meanwhile; a process dying within this window has the delivery sent again.
 */
export const DEFAULT_RECORD_DELAY_MS = 10;

/** By default one statement records up to this many times `concurrency` outcomes. */
const RECORDS_PER_SLOT = 4;

/** A kept-alive connection unused this long is closed (sooner when the receiver says so). */
const IDLE_CONNECTION_MS = 4_000;

/**
 * The continuous loop holds up to this many times `concurrency` deliveries: those in flight, those
 * claimed ahead (ready for the next free slot), and those being claimed. A claim's round trip is then
 * time the slots keep working through deliveries claimed before, not time they stand idle.
 */
const HELD_PER_SLOT = 8;
/**
 * Each claim of the continuous loop asks for this many times `concurrency` rows, once that much room
 * is free: a claim's statement (and opening its subscriptions' secrets) costs about the same for 16
 * rows as for 64, so its share of each delivery shrinks with its size. Half of what is held, so the
 * slots work through one claim's rows while the next is under way.
 */
const CLAIM_PER_SLOT = 4;

/** The channel the webhook_deliveries insert trigger notifies. */
export const WEBHOOK_DELIVERIES_CHANNEL = 'sched_webhook_deliveries';

/**
 * Takes due deliveries from the webhook_deliveries table (the outbox is the queue), sends them signed,
 * and records each result. Claims use FOR UPDATE SKIP LOCKED and a lease, so any number of processes
 * can run one, and a delivery held by a process that died is sent again once its lease runs out:
 * at least once, never silently lost. Up to `concurrency` deliveries are in flight, more claimed as
 * slots free up; outcomes finishing close together are recorded in one statement (OutcomeBatcher);
 * connections are kept alive per origin, each checked by the outbound guard when it is made.
 */
export class WebhookDispatcher {
  readonly #o: Required<Omit<WebhookDispatcherOptions, 'logger' | 'onOutcome' | 'onIdle'>> &
    WebhookDispatcherOptions;
  readonly #agent: Dispatcher;
  readonly #outcomes: OutcomeBatcher;
  /** Most deliveries claimed and not finished: in flight, or ready for a slot. */
  readonly #maxHeld: number;
  /** The rows each claim of the continuous loop asks for, once that much room is free. */
  readonly #claimRows: number;
  /** Whether start() runs the continuous loop (until stop()). */
  #active = false;
  /** Deliveries whose attempt has not finished: the slots taken. */
  #inFlight = 0;
  /** Claimed ahead, oldest first, each sent when a slot frees up. */
  #ready: Delivery[] = [];
  /** Every delivery sent and not yet recorded, for stop() to wait on. */
  readonly #tasks = new Set<Promise<void>>();
  /** Claims under way, and how many rows they asked for between them. */
  readonly #claims = new Set<Promise<void>>();
  #claimingRows = 0;
  /** A claim found fewer than it asked for: the next one waits for a wake-up or the poll. */
  #idle = false;
  /** Wake-ups so far: a claim that found few rows marks the dispatcher idle only if none came meanwhile. */
  #wakes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: WebhookDispatcherOptions) {
    this.#o = {
      timeoutMs: 15_000,
      leaseMs: 60_000,
      concurrency: DEFAULT_CONCURRENCY,
      recordDelayMs: DEFAULT_RECORD_DELAY_MS,
      recordBatchSize: (options.concurrency ?? DEFAULT_CONCURRENCY) * RECORDS_PER_SLOT,
      pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
      random: Math.random,
      ...options,
    };
    // A lease that could run out mid-attempt would let a second process send the same delivery.
    if (this.#o.leaseMs <= this.#o.timeoutMs) {
      throw new Error(
        `the delivery lease (${this.#o.leaseMs} ms) must outlast an attempt (${this.#o.timeoutMs} ms)`,
      );
    }
    if (!Number.isInteger(this.#o.concurrency) || this.#o.concurrency < 1) {
      throw new Error(`the dispatcher's concurrency must be a positive integer, not ${this.#o.concurrency}`);
    }
    this.#maxHeld = this.#o.concurrency * HELD_PER_SLOT;
    this.#claimRows = this.#o.concurrency * CLAIM_PER_SLOT;
    // Keep-alive connections per origin, no more of them than deliveries in flight.
    this.#agent = options.guard.agent({
      connectTimeoutMs: this.#o.timeoutMs,
      connectionsPerOrigin: this.#o.concurrency,
      idleTimeoutMs: IDLE_CONNECTION_MS,
    });
    this.#outcomes = new OutcomeBatcher({
      db: this.#o.db,
      maxBatch: this.#o.recordBatchSize,
      delayMs: this.#o.recordDelayMs,
      logger: this.#o.logger,
    });
  }

  /**
   * Runs continuously until stop(): keeps up to `concurrency` deliveries in flight, claiming more as
   * slots free up, so a slow receiver holds one slot and not a batch.
   */
  start(): void {
    this.#active = true;
    this.#idle = false;
    this.#pump();
  }

  /**
   * Looks for due deliveries now rather than at the next poll; called when a new delivery is
   * committed (LISTEN/NOTIFY). During a claim, it keeps the claim's result from idling the loop.
   */
  wake(): void {
    if (!this.#active) return;
    this.#wakes++;
    this.#idle = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pump();
  }

  /**
   * Stops claiming, hands back the deliveries claimed ahead, lets those in flight finish, and records
   * every outcome.
   */
  async stop(): Promise<void> {
    this.#active = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#claims.size > 0) await Promise.allSettled([...this.#claims]);
    this.#release(this.#ready.splice(0));
    // Outcomes no longer wait for company: each attempt still finishing is recorded as it ends.
    const closing = this.#outcomes.close();
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    await closing;
    await this.#outcomes.close();
    await this.#agent.close();
  }

  /**
   * One round, apart from the continuous loop: claims up to `concurrency` due deliveries, sends them,
   * and returns once every outcome is recorded. Returns how many were claimed.
   */
  async runOnce(): Promise<number> {
    const claimed = await this.#claim(this.#o.concurrency);
    const recordings = await Promise.all(
      claimed.map(async (delivery) => {
        const result = await this.#attempt(delivery);
        // Wrapped, so that waiting for the attempts does not wait for their recording too.
        return { recorded: this.#record(delivery, result) };
      }),
    );
    this.#outcomes.flush();
    // Settled, not all: one failure to record must not leave the rest of the batch unawaited.
    for (const result of await Promise.allSettled(recordings.map((entry) => entry.recorded))) {
      if (result.status === 'rejected')
        this.#o.logger?.error({ err: result.reason }, 'recording a webhook delivery failed');
    }
    return claimed.length;
  }

  /**
   * Sends ready deliveries into free slots, and claims more once enough room is left for them and
   * work may be due.
   */
  #pump(): void {
    const expired: Delivery[] = [];
    while (this.#active && this.#inFlight < this.#o.concurrency && this.#ready.length > 0) {
      const delivery = this.#ready.shift()!;
      // One that waited for a slot so long that its lease could run out mid-attempt is handed back.
      if (this.#o.clock() + this.#o.timeoutMs < delivery.leaseUntil) this.#send(delivery);
      else expired.push(delivery);
    }
    this.#release(expired);
    while (this.#active) {
      const held = this.#inFlight + this.#ready.length + this.#claimingRows;
      if (this.#maxHeld - held < this.#claimRows) return;
      if (this.#idle) {
        this.#timer ??= setTimeout(() => {
          this.#timer = undefined;
          this.#idle = false;
          this.#pump();
        }, this.#o.pollIntervalMs);
        return;
      }
      const rows = this.#claimRows;
      this.#claimingRows += rows;
      const claim = this.#claimAhead(rows).finally(() => {
        this.#claimingRows -= rows;
        this.#claims.delete(claim);
        this.#pump();
      });
      this.#claims.add(claim);
    }
  }

  async #claimAhead(limit: number): Promise<void> {
    const wakes = this.#wakes;
    let claimed: Delivery[];
    try {
      claimed = await this.#claim(limit);
    } catch (error) {
      this.#o.logger?.error({ err: error }, 'webhook dispatch failed');
      claimed = [];
    }
    // Fewer than asked: nothing else is due now, unless a commit announced more during the claim.
    if (claimed.length < limit && wakes === this.#wakes) {
      this.#idle = true;
      if (this.#active) this.#o.onIdle?.();
    }
    // Stopped meanwhile: stop() hands them back.
    this.#ready.push(...claimed);
  }

  /** Hands claimed deliveries back unsent: due again at once, their attempt not counted. */
  #release(deliveries: Delivery[]): void {
    if (deliveries.length === 0) return;
    for (const delivery of deliveries) this.#signed(delivery.subscription);
    const task = releaseClaims(this.#o.db, deliveries, new Date(this.#o.clock()))
      .catch((error: unknown) => {
        this.#o.logger?.error({ err: error }, 'handing back webhook deliveries failed; their leases run out');
      })
      .finally(() => this.#tasks.delete(task));
    this.#tasks.add(task);
  }

  #send(delivery: Delivery): void {
    this.#inFlight++;
    const task = (async () => {
      let result: AttemptResult;
      try {
        result = await this.#attempt(delivery);
      } finally {
        // The slot is free once the receiver has answered; the outcome is recorded meanwhile.
        this.#inFlight--;
        this.#pump();
      }
      await this.#record(delivery, result);
    })()
      .catch((error: unknown) => {
        this.#o.logger?.error({ err: error }, 'recording a webhook delivery failed');
      })
      .finally(() => this.#tasks.delete(task));
    this.#tasks.add(task);
  }

  async #claim(limit: number): Promise<Delivery[]> {
    const now = new Date(this.#o.clock());
    const leaseUntil = new Date(now.getTime() + this.#o.leaseMs);
    const { rows } = await sql<ClaimRow>`
      with due as (
        select d.delivery_id
        from webhook_deliveries d
        join webhook_endpoints w on w.webhook_id = d.webhook_id
        where d.status = 'pending' and d.next_attempt_at <= ${now}
          and (d.lease_until is null or d.lease_until <= ${now})
          and w.status = 'active'
        order by d.next_attempt_at
        limit ${limit}
        for update of d skip locked
      ), claimed as (
        update webhook_deliveries d
        set lease_until = ${leaseUntil}, attempts = d.attempts + 1, updated_at = ${now}
        from due
        where d.delivery_id = due.delivery_id
        returning d.delivery_id, d.attempts, d.webhook_id, d.event_id
      )
      select delivery_id, attempts, webhook_id, event_id, null::text as payload, null::text as url,
        null::text as url_sealed, null::text as secret_sealed, null::text as previous_secret_sealed,
        null::timestamptz as previous_secret_expires_at, null::timestamptz as failing_since
      from claimed
      union all
      select null, null, w.webhook_id, null, null, w.url, w.url_sealed, w.secret_sealed,
        w.previous_secret_sealed, w.previous_secret_expires_at, w.failing_since
      from webhook_endpoints w where w.webhook_id in (select webhook_id from claimed)
      union all
      select null, null, null, e.event_id, e.payload, null, null, null, null, null, null
      from webhook_events e where e.event_id in (select event_id from claimed)
    `.execute(this.#o.db);
    const subscriptions = new Map<string, Subscription>();
    const bodies = new Map<string, Buffer>();
    for (const row of rows) {
      if (row.secret_sealed !== null) {
        subscriptions.set(row.webhook_id!, {
          webhookId: row.webhook_id!,
          url: row.url!,
          urlSealed: row.url_sealed,
          secretSealed: row.secret_sealed,
          previousSecretSealed: row.previous_secret_sealed,
          previousSecretExpiresAt: row.previous_secret_expires_at?.getTime() ?? 0,
          failingSince: row.failing_since,
          target: undefined,
          unsigned: 0,
        });
      } else if (row.payload !== null) {
        // The body sent and signed, encoded once however many subscriptions the event goes to.
        bodies.set(row.event_id!, Buffer.from(row.payload, 'utf8'));
      }
    }
    const leaseEnd = leaseUntil.getTime();
    const claimed: Delivery[] = [];
    for (const row of rows) {
      if (row.delivery_id === null) continue;
      // Both are read in the claim's own snapshot, in which the delivery's references hold.
      const subscription = subscriptions.get(row.webhook_id!)!;
      subscription.unsigned++;
      claimed.push({
        delivery_id: row.delivery_id,
        attempts: row.attempts!,
        body: bodies.get(row.event_id!)!,
        subscription,
        leaseUntil: leaseEnd,
      });
    }
    return claimed;
  }

  /**
   * The subscription's URL and signing keys, opened and checked once per claim. (The agent checks
   * every address connected to, whatever the URL.) Throws, for each delivery, what opening or
   * checking said.
   */
  #target(subscription: Subscription): Target {
    let target = subscription.target;
    if (target === undefined) {
      try {
        const url = this.#o.guard.checkUrl(deliveryUrl(subscription, this.#o.secretBox), ['https', 'http']);
        const keys = [webhookSigningKey(this.#o.secretBox.open(subscription.secretSealed))];
        // The previous secret signs too until it expires; one expired already is not even opened.
        if (subscription.previousSecretSealed && subscription.previousSecretExpiresAt > this.#o.clock()) {
          keys.push(webhookSigningKey(this.#o.secretBox.open(subscription.previousSecretSealed)));
        }
        target = { origin: url.origin, path: `${url.pathname}${url.search}`, keys };
      } catch (error) {
        target = error instanceof Error ? error : new Error(String(error));
      }
      subscription.target = target;
    }
    if (target instanceof Error) throw target;
    return target;
  }

  /** One of the claim's deliveries to the subscription no longer needs its keys; the last wipes them. */
  #signed(subscription: Subscription): void {
    if (--subscription.unsigned > 0) return;
    const target = subscription.target;
    if (target !== undefined && !(target instanceof Error)) for (const key of target.keys) key.fill(0);
  }

  #signatures(delivery: Delivery, target: Target, messageId: string, timestamp: number, now: number): string {
    let header = signWebhook(target.keys[0]!, messageId, timestamp, delivery.body);
    const previous = target.keys[1];
    if (previous && delivery.subscription.previousSecretExpiresAt > now) {
      header += ` ${signWebhook(previous, messageId, timestamp, delivery.body)}`;
    }
    return header;
  }

  async #attempt(delivery: Delivery): Promise<AttemptResult> {
    const now = this.#o.clock();
    const messageId = `msg_${delivery.delivery_id}`;
    const timestamp = Math.floor(now / 1000);
    const started = performance.now();
    let answer: Answer;
    try {
      let target: Target;
      let signature: string;
      try {
        target = this.#target(delivery.subscription);
        signature = this.#signatures(delivery, target, messageId, timestamp, now);
      } finally {
        this.#signed(delivery.subscription);
      }
      answer = await new Promise<Answer>((resolve) => {
        const handler = new AttemptHandler(resolve, this.#o.timeoutMs);
        this.#agent.dispatch(
          {
            origin: target.origin,
            path: target.path,
            method: 'POST',
            body: delivery.body,
            headers: {
              'content-type': 'application/json',
              'user-agent': 'Sched-Webhooks/1.0',
              'webhook-id': messageId,
              'webhook-timestamp': String(timestamp),
              'webhook-signature': signature,
            },
            headersTimeout: this.#o.timeoutMs,
            bodyTimeout: this.#o.timeoutMs,
          },
          handler,
        );
      });
    } catch (error) {
      answer = {
        statusCode: null,
        excerpt: null,
        error: error instanceof Error ? error : new Error(String(error)),
      };
    }
    const latencyMs = Math.round(performance.now() - started);
    if (answer.error === null) {
      return { statusCode: answer.statusCode, latencyMs, excerpt: answer.excerpt || null, error: null };
    }
    const message =
      answer.error === TIMED_OUT
        ? `no answer within ${this.#o.timeoutMs / 1000} s`
        : describeFailure(answer.error, this.#o.timeoutMs);
    return { statusCode: null, latencyMs, excerpt: null, error: message };
  }

  /** Records an attempt's outcome; resolves once it is stored (or found superseded). */
  async #record(delivery: Delivery, result: AttemptResult): Promise<void> {
    const outcome = classifyAttempt(result.statusCode, delivery.attempts, this.#o.random());
    const now = this.#o.clock();
    const record: DeliveryRecord = {
      deliveryId: delivery.delivery_id,
      attempts: delivery.attempts,
      status: outcome.kind === 'delivered' ? 'succeeded' : outcome.kind === 'failed' ? 'pending' : 'failed',
      nextAttemptAt: outcome.kind === 'failed' ? now + outcome.retryInMs : null,
      attemptedAt: now,
      statusCode: result.statusCode,
      latencyMs: result.latencyMs,
      excerpt: result.excerpt,
      error:
        result.error ??
        (outcome.kind === 'delivered'
          ? null
          : result.statusCode !== null && result.statusCode >= 300 && result.statusCode < 400
            ? `the receiver answered ${result.statusCode}; redirects are not followed`
            : `the receiver answered ${result.statusCode}`),
    };
    // The claim told us whether a failure streak is open. A success that closes none, and a failure
    // within one that is not yet five days old, change the delivery row alone: those are written
    // together with the other attempts finishing about now, in one statement.
    const since = delivery.subscription.failingSince?.getTime();
    const alone =
      outcome.kind === 'delivered'
        ? since === undefined
        : outcome.kind !== 'gone' && since !== undefined && now - since < DISABLE_AFTER_FAILING_MS;
    const recorded = alone
      ? await this.#outcomes.add(record)
      : await this.#o.db
          .transaction()
          .execute((trx) => this.#recordWithSubscription(trx, delivery, record, outcome.kind, now));
    if (recorded) this.#o.onOutcome?.(outcome.kind);
  }

  /** The delivery row and, in the same transaction, the subscription's failure streak or status. */
  async #recordWithSubscription(
    trx: Db,
    delivery: Delivery,
    record: DeliveryRecord,
    kind: DeliveryOutcome['kind'],
    now: number,
  ): Promise<boolean> {
    // The attempt count guards against a process whose lease ran out recording over its successor.
    if (!(await writeRecords(trx, [record])).has(delivery.delivery_id)) return false;
    if (kind === 'delivered') {
      await trx
        .updateTable('webhook_endpoints')
        .set({ failing_since: null })
        .where('webhook_id', '=', delivery.subscription.webhookId)
        .execute();
    } else if (kind === 'gone') {
      await this.#disable(
        trx,
        delivery.subscription.webhookId,
        `the receiver answered 410 Gone at ${new Date(now).toISOString()}`,
      );
    } else {
      const since = delivery.subscription.failingSince?.getTime() ?? now;
      if (!delivery.subscription.failingSince) {
        await trx
          .updateTable('webhook_endpoints')
          .set({ failing_since: sql`coalesce(failing_since, ${new Date(now)})` })
          .where('webhook_id', '=', delivery.subscription.webhookId)
          .execute();
      }
      if (now - since >= DISABLE_AFTER_FAILING_MS) {
        await this.#disable(
          trx,
          delivery.subscription.webhookId,
          `every delivery has failed since ${new Date(since).toISOString()} (5 days); last error: ${record.error ?? 'unknown'}`,
        );
      }
    }
    return true;
  }

  async #disable(db: Db, webhookId: string, reason: string): Promise<void> {
    await db
      .updateTable('webhook_endpoints')
      .set({ status: 'disabled', disabled_reason: reason, updated_at: new Date(this.#o.clock()) })
      .where('webhook_id', '=', webhookId)
      .where('status', '<>', 'disabled')
      .execute();
    this.#o.logger?.warn({ webhookId, reason }, 'webhook subscription disabled');
  }
}

/** How an attempt ended: the receiver's status and the start of its answer, or an error. */
type Answer =
  { statusCode: number; excerpt: string; error: null } | { statusCode: null; excerpt: null; error: Error };

/** The reason an attempt past its deadline is aborted with. */
const TIMED_OUT = new Error('the attempt ran out of time');

/** A body longer than this many bytes is cut off: it holds at least EXCERPT_CHARS characters. */
const EXCERPT_BYTES = EXCERPT_CHARS * 4;

/**
 * One attempt, read through undici's handler interface: the status and the body's first
 * EXCERPT_CHARS characters, within the whole attempt's deadline (connect to last byte). A body read to
 * its end leaves the connection to be reused; a longer one is cut off, and its connection with it.
 */
class AttemptHandler implements Dispatcher.DispatchHandler {
  readonly #resolve: (answer: Answer) => void;
  readonly #deadline: NodeJS.Timeout;
  #controller: Dispatcher.DispatchController | undefined;
  #statusCode = 0;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #done = false;

  constructor(resolve: (answer: Answer) => void, timeoutMs: number) {
    this.#resolve = resolve;
    this.#deadline = setTimeout(abortLate, timeoutMs, this);
  }

  /** Past the deadline: ends the attempt, whatever undici is still waiting for. */
  timeOut(): void {
    this.#controller?.abort(TIMED_OUT);
    this.#finish({ statusCode: null, excerpt: null, error: TIMED_OUT });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#done) controller.abort(TIMED_OUT);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.#statusCode = statusCode;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#done) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes >= EXCERPT_BYTES) {
      this.#finish(this.#answer());
      controller.abort(new Error('the answer is longer than its excerpt'));
    }
  }

  onResponseEnd(): void {
    this.#finish(this.#answer());
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#finish({ statusCode: null, excerpt: null, error });
  }

  #answer(): Answer {
    const bytes = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    // Cut at a byte count of at least four a character: a character split there is past the excerpt.
    const excerpt =
      bytes.length === 0 ? '' : bytes.toString('utf8', 0, EXCERPT_BYTES).slice(0, EXCERPT_CHARS);
    return { statusCode: this.#statusCode, excerpt, error: null };
  }

  #finish(answer: Answer): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#deadline);
    this.#chunks = [];
    this.#resolve(answer);
  }
}

function abortLate(handler: AttemptHandler): void {
  handler.timeOut();
}

/**
 * The URL as given, from `url_sealed`. A row not sealed yet (from before sealing, or written by a
 * process of an earlier version during an upgrade, which changes `url` alone) holds it in `url`: the
 * sealed URL is used only while `url` is its masked form.
 */
function deliveryUrl(subscription: Subscription, secretBox: SecretBox): string {
  if (!subscription.urlSealed) return subscription.url;
  const sealed = secretBox.open(subscription.urlSealed);
  return maskedWebhookUrl(sealed) === subscription.url ? sealed : subscription.url;
}

function describeFailure(outer: Error, timeoutMs: number): string {
  // undici wraps connection failures; the cause says what happened.
  const error = outer.cause instanceof Error ? outer.cause : outer;
  const code = (error as NodeJS.ErrnoException).code ?? (outer as NodeJS.ErrnoException).code;
  if (outer.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`;
  if (
    error.name === 'TimeoutError' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return `no answer within ${timeoutMs / 1000} s`;
  }
  // Said without the URL, which may carry a token in its query: the error is stored and shown.
  if (error instanceof OutboundRefusedError) {
    return `refused to connect to ${hostOf(error.url)}: ${error.reason}`;
  }
  if (code === 'EOUTBOUNDREFUSED' || error.name === 'OutboundRefusedError') return error.message;
  if (code === 'ECONNREFUSED') return 'connection refused';
  return code ? `${code}: ${error.message}` : error.message;
}

/** A URL's host, or the text as it is when it is a host name already. */
function hostOf(url: string): string {
  try {
    return new URL(url).host || url;
  } catch {
    return url;
  }
}

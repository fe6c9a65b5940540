import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import type { Dispatcher } from 'undici';
import { request } from 'undici';
import { classifyAttempt, DISABLE_AFTER_FAILING_MS } from '../domain/webhook-retry.js';
import { type OutboundGuard, OutboundRefusedError } from '../integrations/index.js';
import type { SecretBox } from '../security/secret-box.js';
import type { Clock } from '../services/context.js';
import { maskedWebhookUrl } from '../services/webhooks.js';
import type { Db } from '../storage/database.js';
import { signWebhook } from './webhook-signature.js';

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
  batchSize?: number;
  pollIntervalMs?: number;
  random?: () => number;
  onOutcome?: (outcome: string) => void;
};

type Claimed = {
  delivery_id: string;
  attempts: number;
  webhook_id: string;
  /** Masked; the URL itself is in url_sealed, except on rows not yet sealed. */
  url: string;
  url_sealed: string | null;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Date | null;
  failing_since: Date | null;
  payload: string;
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

/** The channel the webhook_deliveries insert trigger notifies. */
export const WEBHOOK_DELIVERIES_CHANNEL = 'sched_webhook_deliveries';

/**
 * Takes due deliveries from the webhook_deliveries table (the outbox is the queue), sends them signed,
 * and records each result. Claims use FOR UPDATE SKIP LOCKED and a lease, so any number of processes
 * can run one, and a delivery held by a process that died is sent again once its lease runs out:
 * at least once, never silently lost.
 */
export class WebhookDispatcher {
  readonly #o: Required<Omit<WebhookDispatcherOptions, 'logger' | 'onOutcome'>> & WebhookDispatcherOptions;
  readonly #agent: Dispatcher;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;
  #busy = false;
  #wakeRequested = false;

  constructor(options: WebhookDispatcherOptions) {
    this.#o = {
      timeoutMs: 15_000,
      leaseMs: 60_000,
      batchSize: 16,
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
    this.#agent = options.guard.agent({ connectTimeoutMs: this.#o.timeoutMs });
  }

  start(): void {
    this.#stopped = false;
    this.#tick();
  }

  /**
   * Looks for due deliveries now rather than at the next poll; called when a new delivery is
   * committed (LISTEN/NOTIFY). During a round, it makes the next round start straight after.
   */
  wake(): void {
    if (this.#stopped) return;
    if (this.#busy) {
      this.#wakeRequested = true;
    } else if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#tick();
    }
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#busy = true;
    this.#wakeRequested = false;
    this.#running = this.runOnce()
      .catch((error: unknown) => {
        this.#o.logger?.error({ err: error }, 'webhook dispatch failed');
        return 0;
      })
      .then((count) => {
        this.#busy = false;
        if (this.#stopped) return;
        const again = count > 0 || this.#wakeRequested;
        this.#timer = setTimeout(
          () => {
            this.#timer = undefined;
            this.#tick();
          },
          again ? 0 : this.#o.pollIntervalMs,
        );
      });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
    await this.#agent.close();
  }

  /** One round: claim what is due, send it all, record the results. Returns how many were sent. */
  async runOnce(): Promise<number> {
    const claimed = await this.#claim();
    // Settled, not all: one failure to record must not leave the rest of the batch running unawaited.
    const results = await Promise.allSettled(claimed.map((delivery) => this.#deliver(delivery)));
    for (const result of results) {
      if (result.status === 'rejected')
        this.#o.logger?.error({ err: result.reason }, 'recording a webhook delivery failed');
    }
    return claimed.length;
  }

  async #claim(): Promise<Claimed[]> {
    const now = new Date(this.#o.clock());
    const leaseUntil = new Date(now.getTime() + this.#o.leaseMs);
    const result = await sql<Claimed>`
      with due as (
        select d.delivery_id
        from webhook_deliveries d
        join webhook_endpoints w on w.webhook_id = d.webhook_id
        where d.status = 'pending' and d.next_attempt_at <= ${now}
          and (d.lease_until is null or d.lease_until <= ${now})
          and w.status = 'active'
        order by d.next_attempt_at
        limit ${this.#o.batchSize}
        for update of d skip locked
      )
      update webhook_deliveries d
      set lease_until = ${leaseUntil}, attempts = d.attempts + 1, updated_at = ${now}
      from due, webhook_endpoints w, webhook_events e
      where d.delivery_id = due.delivery_id and w.webhook_id = d.webhook_id and e.event_id = d.event_id
      returning d.delivery_id, d.attempts, d.webhook_id, w.url, w.url_sealed, w.secret_sealed, w.previous_secret_sealed,
        w.previous_secret_expires_at, w.failing_since, e.payload
    `.execute(this.#o.db);
    return result.rows;
  }

  #signatures(delivery: Claimed, messageId: string, timestamp: number, now: number): string {
    const secrets = [this.#o.secretBox.open(delivery.secret_sealed)];
    if (delivery.previous_secret_sealed && (delivery.previous_secret_expires_at?.getTime() ?? 0) > now) {
      secrets.push(this.#o.secretBox.open(delivery.previous_secret_sealed));
    }
    return secrets.map((secret) => signWebhook(secret, messageId, timestamp, delivery.payload)).join(' ');
  }

  async #attempt(delivery: Claimed): Promise<AttemptResult> {
    const now = this.#o.clock();
    const messageId = `msg_${delivery.delivery_id}`;
    const timestamp = Math.floor(now / 1000);
    const started = performance.now();
    const latency = () => Math.round(performance.now() - started);
    try {
      const url = deliveryUrl(this.#o.secretBox, delivery);
      this.#o.guard.checkUrl(url, ['https', 'http']);
      const response = await request(url, {
        method: 'POST',
        body: delivery.payload,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Sched-Webhooks/1.0',
          'webhook-id': messageId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': this.#signatures(delivery, messageId, timestamp, now),
        },
        dispatcher: this.#agent,
        headersTimeout: this.#o.timeoutMs,
        bodyTimeout: this.#o.timeoutMs,
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
      let excerpt = '';
      for await (const chunk of response.body) {
        excerpt += (chunk as Buffer).toString('utf8');
        if (excerpt.length >= EXCERPT_CHARS) break;
      }
      response.body.destroy();
      return {
        statusCode: response.statusCode,
        latencyMs: latency(),
        excerpt: excerpt.slice(0, EXCERPT_CHARS) || null,
        error: null,
      };
    } catch (error) {
      const message = error instanceof Error ? describeFailure(error, this.#o.timeoutMs) : String(error);
      return { statusCode: null, latencyMs: latency(), excerpt: null, error: message };
    }
  }

  async #deliver(delivery: Claimed): Promise<void> {
    const result = await this.#attempt(delivery);
    const outcome = classifyAttempt(result.statusCode, delivery.attempts, this.#o.random());
    const now = this.#o.clock();
    const error =
      result.error ??
      (outcome.kind === 'delivered'
        ? null
        : result.statusCode !== null && result.statusCode >= 300 && result.statusCode < 400
          ? `the receiver answered ${result.statusCode}; redirects are not followed`
          : `the receiver answered ${result.statusCode}`);
    const record = async (trx: Db): Promise<boolean> => {
      // The attempt count guards against a process whose lease ran out recording over its successor.
      const updated = await trx
        .updateTable('webhook_deliveries')
        .set({
          status:
            outcome.kind === 'delivered' ? 'succeeded' : outcome.kind === 'failed' ? 'pending' : 'failed',
          next_attempt_at: outcome.kind === 'failed' ? new Date(now + outcome.retryInMs) : null,
          lease_until: null,
          last_attempt_at: new Date(now),
          last_status_code: result.statusCode,
          last_latency_ms: result.latencyMs,
          last_response_excerpt: result.excerpt,
          last_error: error,
          updated_at: new Date(now),
        })
        .where('delivery_id', '=', delivery.delivery_id)
        .where('attempts', '=', delivery.attempts)
        .returning('delivery_id')
        .executeTakeFirst();
      if (!updated) return false;
      if (outcome.kind === 'delivered') {
        // The common case costs no second statement: the claim told us whether a streak was open.
        if (delivery.failing_since) {
          await trx
            .updateTable('webhook_endpoints')
            .set({ failing_since: null })
            .where('webhook_id', '=', delivery.webhook_id)
            .execute();
        }
      } else if (outcome.kind === 'gone') {
        await this.#disable(
          trx,
          delivery.webhook_id,
          `the receiver answered 410 Gone at ${new Date(now).toISOString()}`,
        );
      } else {
        const since = delivery.failing_since?.getTime() ?? now;
        if (!delivery.failing_since) {
          await trx
            .updateTable('webhook_endpoints')
            .set({ failing_since: sql`coalesce(failing_since, ${new Date(now)})` })
            .where('webhook_id', '=', delivery.webhook_id)
            .execute();
        }
        if (now - since >= DISABLE_AFTER_FAILING_MS) {
          await this.#disable(
            trx,
            delivery.webhook_id,
            `every delivery has failed since ${new Date(since).toISOString()} (5 days); last error: ${error ?? 'unknown'}`,
          );
        }
      }
      return true;
    };
    // A success with no failure streak to close is one statement; anything else touches the
    // subscription too, and both rows change together.
    const alone = outcome.kind === 'delivered' && !delivery.failing_since;
    const recorded = alone ? await record(this.#o.db) : await this.#o.db.transaction().execute(record);
    if (recorded) this.#o.onOutcome?.(outcome.kind);
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

/**
 * The URL as given, from `url_sealed`. A row not sealed yet (from before sealing, or written by a
 * process of an earlier version during an upgrade, which changes `url` alone) holds it in `url`: the
 * sealed URL is used only while `url` is its masked form.
 */
function deliveryUrl(box: SecretBox, delivery: Claimed): string {
  if (!delivery.url_sealed) return delivery.url;
  const sealed = box.open(delivery.url_sealed);
  return maskedWebhookUrl(sealed) === delivery.url ? sealed : delivery.url;
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

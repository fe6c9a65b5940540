import { randomUUID } from 'node:crypto';
import { etagOf } from './event-json.js';
import { badRequest, GraphError } from './graph-error.js';
import { encodeId } from './ids.js';
import type { Change, Mailbox } from './mailbox.js';
import { isoUtc } from './times.js';

export type SubscriptionOptions = {
  /** 4230 (older docs, many apps) or 10080 (current docs) for Outlook events. */
  maxExpirationMinutes: number;
  /** Shorter requests are lengthened to this. */
  minExpirationMinutes: number;
  validationTimeoutMs: number;
  /** Graph's publish timeout: an answer slower than this is a failed delivery. */
  deliveryTimeoutMs: number;
  retryDelayMs: number;
  maxDeliveryAttempts: number;
  /** Changes within this long go out in one POST per URL. */
  batchDelayMs: number;
  /**
   * The first reauthorizationRequired goes out once this little of a subscription's life is left
   * (the lifecycle doc's sketch: a quarter of the time left at most 180 minutes, so 720).
   */
  reauthorizationLeadMinutes: number;
  /** In the last 240 minutes (a quarter of the time left under 60), one every this many minutes. */
  reauthorizationRepeatMinutes: number;
};

/** Under this much time left, reauthorizationRequired repeats every reauthorizationRepeatMinutes. */
const REAUTHORIZATION_FINAL_MS = 240 * 60_000;
/** How often real time passing is checked for challenges due; the control clock checks at once. */
const CHALLENGE_CHECK_MS = 1000;

export const DEFAULT_SUBSCRIPTION_OPTIONS: SubscriptionOptions = {
  maxExpirationMinutes: 4230,
  minExpirationMinutes: 45,
  validationTimeoutMs: 10_000,
  deliveryTimeoutMs: 3000,
  retryDelayMs: 200,
  maxDeliveryAttempts: 5,
  batchDelayMs: 20,
  reauthorizationLeadMinutes: 720,
  reauthorizationRepeatMinutes: 15,
};

export type Subscription = {
  id: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string | null;
  clientState: string | null;
  expiresAt: number;
  /** The calendar watched; null for the whole mailbox (`me/events`). */
  calendarId: string | null;
  immutable: boolean;
  /** When the last reauthorizationRequired went out (emulator clock); null since create or renewal. */
  challengedAt: number | null;
};

export type Delivery = {
  kind: 'validation' | 'notification' | 'lifecycle';
  url: string;
  attempt: number;
  /** HTTP status of the answer; null when there was none (timeout, refused, dropped). */
  status: number | null;
  outcome: 'delivered' | 'failed' | 'dropped' | 'refused';
  body: unknown;
};

export type LifecycleEvent = 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export class Subscriptions {
  readonly #subs = new Map<string, Subscription>();
  readonly #queues = new Map<string, Record<string, unknown>[]>();
  readonly #pending = new Set<Promise<void>>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #checker: NodeJS.Timeout;
  readonly deliveries: Delivery[] = [];
  /** Knobs: lose every notification, or send each one twice. */
  drop = false;
  duplicate = false;

  constructor(
    private readonly mailbox: Mailbox,
    private readonly clock: () => number,
    public options: SubscriptionOptions,
  ) {
    mailbox.listeners.push((change) => this.#onChange(change));
    this.#checker = setInterval(() => this.challengeDue(), CHALLENGE_CHECK_MS);
    this.#checker.unref();
  }

  /**
   * Sends reauthorizationRequired to every live subscription whose turn has come, from its expiry:
   * once when reauthorizationLeadMinutes are left, then every reauthorizationRepeatMinutes in the last
   * 240 minutes. Called as real time passes and whenever the control clock moves.
   */
  challengeDue(): void {
    const now = this.clock();
    const lead = this.options.reauthorizationLeadMinutes * 60_000;
    const repeat = this.options.reauthorizationRepeatMinutes * 60_000;
    for (const sub of this.list()) {
      const left = sub.expiresAt - now;
      if (!sub.lifecycleNotificationUrl || left > lead) continue;
      const due =
        sub.challengedAt === null || (left <= REAUTHORIZATION_FINAL_MS && now - sub.challengedAt >= repeat);
      if (!due) continue;
      sub.challengedAt = now;
      this.#track(this.lifecycle(sub.id, 'reauthorizationRequired').then(() => undefined));
    }
  }

  list(): Subscription[] {
    return [...this.#subs.values()].filter((s) => this.#live(s));
  }

  get(id: string): Subscription {
    const sub = this.#subs.get(id);
    if (!sub || !this.#live(sub))
      throw new GraphError(404, 'ResourceNotFound', `The object '${id}' was not found.`);
    return sub;
  }

  async create(body: Record<string, unknown>, immutable: boolean): Promise<Subscription> {
    const changeType = typeof body.changeType === 'string' ? body.changeType : '';
    const types = changeType.split(',').map((t) => t.trim());
    if (!changeType || types.some((t) => !['created', 'updated', 'deleted'].includes(t))) {
      throw badRequest(`Invalid changeType '${changeType}'.`, 'InvalidRequest');
    }
    const notificationUrl = this.#url(body.notificationUrl, 'notificationUrl');
    const lifecycleNotificationUrl =
      body.lifecycleNotificationUrl == null
        ? null
        : this.#url(body.lifecycleNotificationUrl, 'lifecycleNotificationUrl');
    const resource = typeof body.resource === 'string' ? body.resource : '';
    const calendarId = this.#calendarOf(resource);
    const clientState = typeof body.clientState === 'string' ? body.clientState : null;
    if (clientState !== null && clientState.length > 128)
      throw badRequest('clientState is longer than 128 characters.', 'InvalidRequest');
    const expiresAt = this.#expiration(body.expirationDateTime);
    await this.#validate(notificationUrl);
    if (lifecycleNotificationUrl !== null) await this.#validate(lifecycleNotificationUrl);
    const sub: Subscription = {
      id: randomUUID(),
      resource,
      changeType: types.join(','),
      notificationUrl,
      lifecycleNotificationUrl,
      clientState,
      expiresAt,
      calendarId,
      immutable,
      challengedAt: null,
    };
    this.#subs.set(sub.id, sub);
    return sub;
  }

  renew(id: string, body: Record<string, unknown>): Subscription {
    const sub = this.get(id);
    sub.expiresAt = this.#expiration(body.expirationDateTime);
    sub.challengedAt = null;
    return sub;
  }

  remove(id: string): void {
    this.get(id);
    this.#subs.delete(id);
  }

  /** Sends a lifecycle notification now; subscriptionRemoved also removes the subscription. */
  async lifecycle(id: string, lifecycleEvent: LifecycleEvent): Promise<Delivery> {
    const sub = this.get(id);
    if (!sub.lifecycleNotificationUrl) throw badRequest('The subscription has no lifecycleNotificationUrl.');
    const body = {
      value: [
        {
          subscriptionId: sub.id,
          subscriptionExpirationDateTime: isoUtc(sub.expiresAt),
          tenantId: this.mailbox.tenantId,
          clientState: sub.clientState,
          lifecycleEvent,
        },
      ],
    };
    if (lifecycleEvent === 'subscriptionRemoved') this.#subs.delete(id);
    return this.#post('lifecycle', sub.lifecycleNotificationUrl, body, 1);
  }

  /** Ends a subscription silently, as Graph does when one expires or is removed on its side. */
  forget(id: string): void {
    this.#subs.delete(id);
  }

  json(sub: Subscription, origin: string): Record<string, unknown> {
    return {
      '@odata.context': `${origin}/v1.0/$metadata#subscriptions/$entity`,
      id: sub.id,
      resource: sub.resource,
      applicationId: '6f0e6a8c-5c3b-4f0e-9f52-0d1e2a3b4c5d',
      changeType: sub.changeType,
      clientState: sub.clientState,
      notificationUrl: sub.notificationUrl,
      notificationQueryOptions: null,
      lifecycleNotificationUrl: sub.lifecycleNotificationUrl,
      expirationDateTime: isoUtc(sub.expiresAt),
      creatorId: this.mailbox.userId,
      includeResourceData: null,
      latestSupportedTlsVersion: 'v1_2',
      encryptionCertificate: null,
      encryptionCertificateId: null,
      notificationUrlAppId: null,
    };
  }

  /** Resolves once every queued and retried delivery has finished. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0 || this.#timers.size > 0) {
      await Promise.all([...this.#pending]);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  close(): void {
    clearInterval(this.#checker);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #live(sub: Subscription): boolean {
    if (sub.expiresAt > this.clock()) return true;
    this.#subs.delete(sub.id);
    return false;
  }

  #url(value: unknown, field: string): string {
    if (typeof value !== 'string') throw badRequest(`${field} is required.`, 'InvalidRequest');
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw badRequest(`${field} is not a URL.`, 'InvalidRequest');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
      throw badRequest(`The ${field} must be an https URL.`, 'InvalidRequest');
    }
    return value;
  }

  /**
   * The documented event resources (Outlook change notifications overview): `me/events` and
   * `users/{id}/events`, every event in the mailbox. Per-calendar paths are not documented for events
   * (only contactFolders and mailFolders have folder paths) and are refused.
   */
  #calendarOf(resource: string): null {
    const path = resource.replace(/^\/+/, '').replace(/^(me|users\/[^/]+)\//i, '');
    if (/^events$/i.test(path)) return null;
    throw badRequest(
      `Operation: Create; Exception: [Status Code: BadRequest; Reason: The resource '${resource}' is not supported.]`,
      'ExtensionError',
    );
  }

  #expiration(value: unknown): number {
    const at = typeof value === 'string' ? Date.parse(value) : NaN;
    if (Number.isNaN(at)) throw badRequest('expirationDateTime is required.', 'InvalidRequest');
    const now = this.clock();
    const max = now + this.options.maxExpirationMinutes * 60_000;
    if (at > max) {
      throw badRequest(
        `Subscription expiration can only be ${this.options.maxExpirationMinutes} minutes in the future.`,
        'InvalidRequest',
      );
    }
    return Math.max(at, now + this.options.minExpirationMinutes * 60_000);
  }

  async #validate(url: string): Promise<void> {
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()}`;
    const target = new URL(url);
    if (!LOOPBACK.has(target.hostname)) {
      this.deliveries.push({
        kind: 'validation',
        url,
        attempt: 1,
        status: null,
        outcome: 'refused',
        body: token,
      });
      throw badRequest(
        'Subscription validation request failed. The emulator only calls loopback addresses.',
        'InvalidRequest',
      );
    }
    target.searchParams.append('validationToken', token);
    const failed = (why: string) =>
      badRequest(`Subscription validation request failed. ${why}`, 'InvalidRequest');
    let status: number | null = null;
    try {
      const response = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        signal: AbortSignal.timeout(this.options.validationTimeoutMs),
      });
      status = response.status;
      const text = await response.text();
      this.deliveries.push({
        kind: 'validation',
        url,
        attempt: 1,
        status,
        outcome: 'delivered',
        body: token,
      });
      if (status !== 200)
        throw failed('Notification endpoint must respond with 200 OK to validation request.');
      if (!(response.headers.get('content-type') ?? '').toLowerCase().startsWith('text/plain')) {
        throw failed('Must respond with a text/plain content type.');
      }
      if (text !== token) throw failed('Response must exactly match validationToken query parameter.');
    } catch (error) {
      if (error instanceof GraphError) throw error;
      this.deliveries.push({ kind: 'validation', url, attempt: 1, status, outcome: 'failed', body: token });
      throw failed(
        `The request to ${url} failed: ${(error as Error).name === 'TimeoutError' ? 'timed out' : String(error)}.`,
      );
    }
  }

  #onChange(change: Change): void {
    for (const sub of this.list()) {
      const watched = sub.calendarId === null || sub.calendarId === change.calendarId;
      if (!watched || !sub.changeType.split(',').includes(change.changeType)) continue;
      const id = encodeId(change.key, change.calendarId, sub.immutable);
      const resource = `Users/${this.mailbox.userId}/Events/${id}`;
      const notification = {
        subscriptionId: sub.id,
        subscriptionExpirationDateTime: isoUtc(sub.expiresAt),
        changeType: change.changeType,
        resource,
        resourceData: {
          '@odata.type': '#Microsoft.Graph.Event',
          '@odata.id': resource,
          ...(change.changeKey ? { '@odata.etag': etagOf(change.changeKey) } : {}),
          id,
        },
        clientState: sub.clientState,
        tenantId: this.mailbox.tenantId,
      };
      const queue = this.#queues.get(sub.notificationUrl) ?? [];
      queue.push(notification);
      if (this.duplicate) queue.push(notification);
      if (!this.#queues.has(sub.notificationUrl)) {
        this.#queues.set(sub.notificationUrl, queue);
        this.#later(this.options.batchDelayMs, () => {
          this.#queues.delete(sub.notificationUrl);
          this.#track(this.#deliver(sub.notificationUrl, { value: queue }, 1));
        });
      }
    }
  }

  async #deliver(url: string, body: unknown, attempt: number): Promise<void> {
    const result = await this.#post('notification', url, body, attempt);
    if (result.outcome !== 'failed' || attempt >= this.options.maxDeliveryAttempts) return;
    this.#later(this.options.retryDelayMs * attempt, () =>
      this.#track(this.#deliver(url, body, attempt + 1)),
    );
  }

  async #post(kind: Delivery['kind'], url: string, body: unknown, attempt: number): Promise<Delivery> {
    const record: Delivery = { kind, url, attempt, status: null, outcome: 'failed', body };
    this.deliveries.push(record);
    if (kind === 'notification' && this.drop) {
      record.outcome = 'dropped';
      return record;
    }
    // Only loopback receivers: the emulator must never send traffic anywhere else.
    if (!LOOPBACK.has(new URL(url).hostname)) {
      record.outcome = 'refused';
      return record;
    }
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.deliveryTimeoutMs),
      });
      await response.arrayBuffer();
      record.status = response.status;
      record.outcome = response.status >= 200 && response.status < 300 ? 'delivered' : 'failed';
    } catch {
      record.outcome = 'failed';
    }
    return record;
  }

  #later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, ms);
    this.#timers.add(timer);
  }

  #track(promise: Promise<void>): void {
    this.#pending.add(promise);
    void promise.finally(() => this.#pending.delete(promise));
  }
}

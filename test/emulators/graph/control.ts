import { DeltaTracker, DEFAULT_DELTA_OPTIONS, type DeltaOptions } from './delta.js';
import { parseEventInput } from './event-input.js';
import { Faults, type FaultRule } from './faults.js';
import { badRequest } from './graph-error.js';
import { decodeId, encodeId } from './ids.js';
import { DEFAULT_CLIENT, Identity, type IdentityOptions, type OAuthClient } from './identity.js';
import { Mailbox } from './mailbox.js';
import { scheduleOptions } from './schedule.js';
import {
  DEFAULT_SUBSCRIPTION_OPTIONS,
  type Delivery,
  type LifecycleEvent,
  type Subscription,
  type SubscriptionOptions,
  Subscriptions,
} from './subscriptions.js';

export type GraphEmulatorOptions = {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Serve https with a self-signed certificate (see `certificate`); plain http when absent. */
  tls?: boolean;
  clients?: OAuthClient[];
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  rotationRevokesOld?: boolean;
  transactionIdWindowMs?: number;
  delta?: Partial<DeltaOptions>;
  subscriptions?: Partial<SubscriptionOptions>;
};

export type RequestRecord = {
  method: string;
  path: string;
  query: string;
  prefer: string | null;
  ifMatch: string | null;
  /** The answer's status; -1 for a call left hanging. */
  status: number;
};

export type TokenGrant = { accessToken: string; refreshToken: string | null; expiresIn: number };

/** Everything the emulator holds; reset builds a new one. */
export class EmulatorState {
  offsetMs = 0;
  readonly clock = () => Date.now() + this.offsetMs;
  readonly mailbox: Mailbox;
  readonly identity: Identity;
  readonly delta: DeltaTracker;
  readonly subscriptions: Subscriptions;
  readonly faults = new Faults();
  readonly requests: RequestRecord[] = [];

  constructor(readonly options: GraphEmulatorOptions) {
    this.mailbox = new Mailbox(this.clock);
    if (options.transactionIdWindowMs !== undefined)
      this.mailbox.transactionIdWindowMs = options.transactionIdWindowMs;
    const identity: IdentityOptions = {
      clients: options.clients ?? [DEFAULT_CLIENT],
      accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 3599,
      refreshTokenTtlSeconds: options.refreshTokenTtlSeconds ?? 90 * 86_400,
      codeTtlSeconds: 600,
      rotationRevokesOld: options.rotationRevokesOld ?? false,
    };
    this.identity = new Identity(identity, this.clock);
    this.delta = new DeltaTracker(this.mailbox);
    this.delta.options = { ...DEFAULT_DELTA_OPTIONS, ...options.delta };
    this.subscriptions = new Subscriptions(this.mailbox, this.clock, {
      ...DEFAULT_SUBSCRIPTION_OPTIONS,
      ...options.subscriptions,
    });
  }
}

/** Typed knobs for tests in the same process; the /__control endpoints call the same methods. */
export class GraphControl {
  constructor(
    private readonly current: () => EmulatorState,
    private readonly resetState: () => void,
  ) {}

  get state(): EmulatorState {
    return this.current();
  }

  /** Forgets every calendar, event, token, subscription and knob. */
  reset(): void {
    this.resetState();
  }

  /** An access token (and refresh token) without the browser round trip. */
  mintToken(options: { scopes?: string[]; ttlSeconds?: number; clientId?: string } = {}): TokenGrant {
    const state = this.state;
    const clientId =
      options.clientId ?? state.identity.options.clients[0]?.clientId ?? DEFAULT_CLIENT.clientId;
    const scopes = options.scopes ?? ['Calendars.ReadWrite', 'offline_access'];
    const issued = state.identity.issue(clientId, scopes, null, options.ttlSeconds);
    return {
      accessToken: String(issued.access_token),
      refreshToken: typeof issued.refresh_token === 'string' ? issued.refresh_token : null,
      expiresIn: Number(issued.expires_in),
    };
  }

  expireAccessTokens(): void {
    this.state.identity.expireAccessTokens();
  }

  revokeRefreshTokens(token?: string): number {
    return this.state.identity.revokeRefreshTokens(token);
  }

  denyNextAuthorization(
    error = 'access_denied',
    description = 'AADSTS65004: User declined to consent to access the app.',
  ): void {
    this.state.identity.denyNext = { error, description };
  }

  createCalendar(name: string): { id: string } {
    return { id: this.state.mailbox.createCalendar(name).id };
  }

  /**
   * Creates an event as a user would in Outlook (or as an invitation from elsewhere carries it in):
   * Graph JSON, plus the iCalUId it should keep. Returns both id forms.
   */
  putEvent(
    calendarId: string,
    event: Record<string, unknown>,
    options: { iCalUId?: string } = {},
  ): { id: string; immutableId: string } {
    const input = parseEventInput(event);
    const { event: stored } = this.state.mailbox.createEvent(calendarId, input, options);
    const key = { eventId: stored.id, originalStart: null };
    return {
      id: encodeId(key, stored.calendarId, false),
      immutableId: encodeId(key, stored.calendarId, true),
    };
  }

  /** The organizer cancelled the meeting: the item stays with isCancelled true. */
  cancelEvent(id: string): void {
    this.state.mailbox.updateEvent(decodeId(id), { fields: { isCancelled: true } }, null);
  }

  moveEvent(id: string, calendarId: string): { id: string; immutableId: string } {
    const stored = this.state.mailbox.moveEvent(decodeId(id), calendarId);
    const key = { eventId: stored.id, originalStart: null };
    return {
      id: encodeId(key, stored.calendarId, false),
      immutableId: encodeId(key, stored.calendarId, true),
    };
  }

  /** Every delta and skip token answers 410 SyncStateNotFound from now on. */
  expireDeltaTokens(): void {
    this.state.delta.expireAll();
  }

  configureDelta(options: Partial<DeltaOptions>): void {
    Object.assign(this.state.delta.options, options);
  }

  addFault(rule: FaultRule): void {
    this.state.faults.add(rule);
  }

  clearFaults(): void {
    this.state.faults.clear();
  }

  get faultsInjected(): number {
    return this.state.faults.injected;
  }

  setMaxConcurrentRequests(max: number | null): void {
    this.state.faults.maxConcurrent = max;
  }

  configureSubscriptions(options: Partial<SubscriptionOptions>): void {
    Object.assign(this.state.subscriptions.options, options);
  }

  subscriptions(): Subscription[] {
    return this.state.subscriptions.list();
  }

  sendLifecycle(subscriptionId: string, lifecycleEvent: LifecycleEvent): Promise<Delivery> {
    return this.state.subscriptions.lifecycle(subscriptionId, lifecycleEvent);
  }

  /** Graph dropped the subscription on its side (expiry, its own clean-up): renewal answers 404. */
  removeSubscription(subscriptionId: string): void {
    this.state.subscriptions.forget(subscriptionId);
  }

  setNotificationDelivery(options: { drop?: boolean; duplicate?: boolean }): void {
    const subs = this.state.subscriptions;
    if (options.drop !== undefined) subs.drop = options.drop;
    if (options.duplicate !== undefined) subs.duplicate = options.duplicate;
  }

  deliveries(): Delivery[] {
    return [...this.state.subscriptions.deliveries];
  }

  notificationsIdle(): Promise<void> {
    return this.state.subscriptions.idle();
  }

  requests(): RequestRecord[] {
    return [...this.state.requests];
  }

  /**
   * Moves the emulator's clock (tokens, subscriptions, transactionId window, fault windows) forward;
   * reauthorizationRequired notifications that come due on the way are sent.
   */
  advanceTime(ms: number): void {
    this.state.offsetMs += ms;
    this.state.subscriptions.challengeDue();
  }

  setWorkingElsewhereDigit(digit: 0 | 4): void {
    scheduleOptions.workingElsewhereDigit = digit;
  }
}

export function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw badRequest(`${field} is required.`);
  return value;
}

import { createHash } from 'node:crypto';
import { GoogleApiError, errors } from './errors.js';
import type { Calendar } from './types.js';

export type Channel = {
  id: string;
  resourceId: string;
  resourceUri: string;
  token: string | null;
  address: string;
  /** Epoch ms. */
  expiration: number;
  calendarId: string;
  stopped: boolean;
  lastMessage: number;
};

export type Delivery = {
  channelId: string;
  state: 'sync' | 'exists' | 'not_exists';
  messageNumber: number;
  /** The receiver's status; null when it could not be reached. */
  status: number | null;
  error?: string;
  at: number;
};

export type PushKnobs = {
  /** Notifications to drop silently (counted, not sent). */
  dropNext: number;
  /** Notifications to send twice. */
  duplicateNext: number;
  /** Wait before each send. */
  delayMs: number;
  /** Keep sending to stopped channels, as Google sometimes briefly does. */
  deliverAfterStop: boolean;
  /** Longest lifetime granted; Google caps calendar channels at 7 days. */
  maxTtlSeconds: number;
};

export const DEFAULT_PUSH_KNOBS: PushKnobs = {
  dropNext: 0,
  duplicateNext: 0,
  delayMs: 0,
  deliverAfterStop: false,
  maxTtlSeconds: 604_800,
};

const CHANNEL_ID = /^[A-Za-z0-9\-_+/=]{1,64}$/;

function pushError(reason: string, message: string): GoogleApiError {
  return new GoogleApiError(400, { domain: 'global', reason, message });
}

/** Watch channels and their notifications: POSTs without a body, headers only. */
export class PushHub {
  readonly channels = new Map<string, Channel>();
  readonly deliveries: Delivery[] = [];
  knobs: PushKnobs = { ...DEFAULT_PUSH_KNOBS };
  readonly #inFlight = new Set<Promise<void>>();

  constructor(private readonly now: () => number) {}

  reset(): void {
    this.channels.clear();
    this.deliveries.length = 0;
    this.knobs = { ...DEFAULT_PUSH_KNOBS };
  }

  /** events.watch; `apiUrl` is the API root the client called, for the channel's resourceUri. */
  watch(calendar: Calendar, body: Record<string, unknown>, apiUrl: string) {
    const { id, type, address, token } = body;
    if (typeof id !== 'string' || !CHANNEL_ID.test(id)) throw errors.badRequest('Invalid channel id.', 'id');
    if (type !== 'web_hook' && type !== 'webhook') throw errors.badRequest('Invalid channel type.', 'type');
    if (typeof address !== 'string' || !loopback(address)) {
      throw pushError(
        'push.webhookUrlUnauthorized',
        `Unauthorized WebHook callback channel: ${String(address)}`,
      );
    }
    if (token !== undefined && (typeof token !== 'string' || token.length > 256)) {
      throw errors.badRequest('Invalid channel token.', 'token');
    }
    if (this.channels.has(id)) throw pushError('channelIdNotUnique', `Channel id ${id} not unique`);
    const params = (body.params ?? {}) as Record<string, unknown>;
    const ttl =
      params.ttl === undefined ? 604_800 : typeof params.ttl === 'string' ? Number(params.ttl) : NaN;
    if (!Number.isInteger(ttl) || ttl <= 0) throw errors.badRequest('Invalid ttl parameter.', 'params.ttl');
    let expiration = this.now() + Math.min(ttl, this.knobs.maxTtlSeconds) * 1000;
    const asked = Number(body.expiration);
    if (body.expiration !== undefined && Number.isFinite(asked)) expiration = Math.min(expiration, asked);
    const channel: Channel = {
      id,
      resourceId: resourceIdOf(calendar.id),
      resourceUri: `${apiUrl}/calendars/${encodeURIComponent(calendar.id)}/events?alt=json`,
      token: typeof token === 'string' ? token : null,
      address,
      expiration,
      calendarId: calendar.id,
      stopped: false,
      lastMessage: 0,
    };
    this.channels.set(id, channel);
    this.#send(channel, 'sync');
    return {
      kind: 'api#channel',
      id,
      resourceId: channel.resourceId,
      resourceUri: channel.resourceUri,
      ...(channel.token === null ? {} : { token: channel.token }),
      expiration: String(expiration),
    };
  }

  stop(body: Record<string, unknown>): void {
    const channel = typeof body.id === 'string' ? this.channels.get(body.id) : undefined;
    if (!channel || channel.resourceId !== body.resourceId) {
      throw new GoogleApiError(404, {
        domain: 'global',
        reason: 'notFound',
        message: `Channel '${String(body.id)}' not found for project '000000000000'`,
      });
    }
    channel.stopped = true;
  }

  changed(calendarId: string): void {
    for (const channel of this.channels.values()) {
      if (channel.calendarId !== calendarId) continue;
      if (channel.stopped && !this.knobs.deliverAfterStop) continue;
      if (channel.expiration <= this.now()) continue;
      this.#send(channel, 'exists');
    }
  }

  /** Resolves once every notification sent so far has been answered or has failed. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #send(channel: Channel, state: Delivery['state']): void {
    // Message numbers rise but are not sequential, so receivers must not expect +1.
    channel.lastMessage = state === 'sync' ? 1 : channel.lastMessage + 1 + Math.floor(Math.random() * 3);
    const messageNumber = channel.lastMessage;
    if (this.knobs.dropNext > 0) {
      this.knobs.dropNext--;
      return;
    }
    let copies = 1;
    if (this.knobs.duplicateNext > 0) {
      this.knobs.duplicateNext--;
      copies = 2;
    }
    for (let i = 0; i < copies; i++) {
      const task = this.#post(channel, state, messageNumber).finally(() => this.#inFlight.delete(task));
      this.#inFlight.add(task);
    }
  }

  async #post(channel: Channel, state: Delivery['state'], messageNumber: number): Promise<void> {
    if (this.knobs.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.knobs.delayMs));
    else await new Promise((resolve) => setImmediate(resolve));
    const headers: Record<string, string> = {
      'X-Goog-Channel-ID': channel.id,
      'X-Goog-Message-Number': String(messageNumber),
      'X-Goog-Resource-ID': channel.resourceId,
      'X-Goog-Resource-State': state,
      'X-Goog-Resource-URI': channel.resourceUri,
      'X-Goog-Channel-Expiration': new Date(channel.expiration).toUTCString(),
    };
    if (channel.token !== null) headers['X-Goog-Channel-Token'] = channel.token;
    const delivery: Delivery = { channelId: channel.id, state, messageNumber, status: null, at: this.now() };
    try {
      const response = await fetch(channel.address, {
        method: 'POST',
        headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(5000),
      });
      await response.arrayBuffer();
      delivery.status = response.status;
    } catch (error) {
      delivery.error = error instanceof Error ? error.message : String(error);
    }
    this.deliveries.push(delivery);
  }
}

/** Only this machine's loopback: the emulator must never post anywhere else. */
function loopback(address: string): boolean {
  try {
    const url = new URL(address);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname === '127.0.0.1';
  } catch {
    return false;
  }
}

/** Stable per watched resource, as Google's opaque resourceId is. */
export function resourceIdOf(calendarId: string): string {
  return createHash('sha256').update(`events:${calendarId}`).digest('base64url').slice(0, 27);
}

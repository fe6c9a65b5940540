import http from 'node:http';
import https from 'node:https';
import type { RequestRecord } from './control-routes.js';
import type { FaultRule } from './faults.js';
import type { PagingKnobs } from './listing.js';
import type { OAuthSettings } from './oauth.js';
import type { Channel, Delivery, PushKnobs } from './push.js';
import type { GoogleEvent, InsertedWith } from './types.js';

export type TokenResponse = {
  access_token: string;
  expires_in: number;
  refresh_token?: string;
  scope: string;
  token_type: 'Bearer';
};

export type StoredView = GoogleEvent & {
  deleted: boolean;
  sendUpdates: string | null;
  /** Which of id and iCalUID the insert (or import) that made it supplied; null for exceptions. */
  insertedWith: InsertedWith | null;
};

export type PlainRequest = {
  method?: string;
  /** The certificate to trust over https (fetch takes no CA of its own). */
  ca?: string | undefined;
  headers?: Record<string, string>;
  /** The name the certificate is checked against, where a Host header names something else. */
  servername?: string;
  body?: string;
};

/** One request with node's http/https client; the whole answer as text. */
export function plainRequest(
  url: URL,
  { method = 'GET', ca, headers = {}, servername, body }: PlainRequest = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const outgoing = transport.request(
      url,
      {
        method,
        headers,
        ...(ca === undefined ? {} : { ca }),
        ...(servername === undefined ? {} : { servername }),
      },
      (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('end', () =>
          resolve({
            status: incoming.statusCode ?? 0,
            headers: incoming.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        incoming.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** One control call answered without HTTP, by the emulator in this process: the path after /__control. */
export type ControlCall = (
  method: string,
  path: string,
  body: string,
) => Promise<{ status: number; text: string }>;

/** Typed helpers for the /__control endpoints of a running emulator (in this process or another). */
export class GoogleControl {
  /**
   * `ca`: the emulator's certificate when it serves https. `direct`: the emulator's own handler, for
   * calls made in its process without a round trip over HTTP (see `GoogleEmulator.localControl`).
   */
  constructor(
    readonly url: string,
    readonly ca?: string,
    private readonly direct?: ControlCall,
  ) {}

  async #call<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const sent = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const { status, text } = this.direct
      ? await this.direct(method, path, sent ?? '')
      : await plainRequest(new URL(`${this.url}/__control${path}`), {
          method,
          ca: this.ca,
          ...(sent === undefined ? {} : { body: sent, headers: { 'content-type': contentType } }),
        });
    if (status < 200 || status > 299) throw new Error(`control ${method} ${path}: ${status} ${text}`);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  reset = () => this.#call<void>('POST', '/reset');

  createCalendar = (input: { id?: string; summary?: string; timeZone?: string } = {}) =>
    this.#call<{ id: string; timeZone: string }>('POST', '/calendars', input);

  #events = (calendarId: string, id?: string) =>
    `/calendars/${encodeURIComponent(calendarId)}/events${id === undefined ? '' : `/${encodeURIComponent(id)}`}`;

  /** Changes "as a user" in the Google Calendar UI: no credentials, no faults, still notified. */
  insertEvent = (calendarId: string, event: Record<string, unknown>) =>
    this.#call<GoogleEvent>('POST', this.#events(calendarId), event);
  patchEvent = (calendarId: string, id: string, patch: Record<string, unknown>) =>
    this.#call<GoogleEvent>('PATCH', this.#events(calendarId, id), patch);
  updateEvent = (calendarId: string, id: string, body: Record<string, unknown>) =>
    this.#call<GoogleEvent>('PUT', this.#events(calendarId, id), body);
  deleteEvent = async (calendarId: string, id: string) => {
    await this.#call<unknown>('DELETE', this.#events(calendarId, id));
  };
  getEvent = (calendarId: string, id: string) => this.#call<GoogleEvent>('GET', this.#events(calendarId, id));
  /** Everything stored, tombstones included. */
  storedEvents = async (calendarId: string) =>
    (await this.#call<{ items: StoredView[] }>('GET', this.#events(calendarId))).items;
  /** An .ics file imported by the user: master plus exceptions (see README). */
  importIcs = async (calendarId: string, ics: string) =>
    (
      await this.#call<{ items: GoogleEvent[] }>(
        'POST',
        `/calendars/${encodeURIComponent(calendarId)}/import-ics`,
        ics,
        'text/calendar',
      )
    ).items;

  expireSyncTokens = (calendarId?: string) =>
    this.#call<void>(
      'POST',
      calendarId === undefined
        ? '/expire-sync-tokens'
        : `/calendars/${encodeURIComponent(calendarId)}/expire-sync-tokens`,
    );
  purgeTombstones = async (calendarId: string) =>
    (
      await this.#call<{ purged: number }>(
        'POST',
        `/calendars/${encodeURIComponent(calendarId)}/purge-tombstones`,
      )
    ).purged;

  addFault = (rule: FaultRule) => this.#call<{ pending: number }>('POST', '/faults', rule);
  clearFaults = () => this.#call<void>('DELETE', '/faults');
  setPaging = (knobs: Partial<PagingKnobs>) => this.#call<PagingKnobs>('PUT', '/paging', knobs);

  mintTokens = (input: { scopes?: string[]; accessTtlSeconds?: number; refresh?: boolean } = {}) =>
    this.#call<TokenResponse>('POST', '/tokens', input);
  expireAccessTokens = async () =>
    (await this.#call<{ expired: number }>('POST', '/tokens/expire-access')).expired;
  revokeRefreshTokens = async () =>
    (await this.#call<{ revoked: number }>('POST', '/tokens/revoke-refresh')).revoked;
  setOAuth = (settings: Partial<Omit<OAuthSettings, 'clientId'>>) =>
    this.#call<Omit<OAuthSettings, 'clientSecret'>>('PUT', '/oauth', settings);

  setPush = (knobs: Partial<PushKnobs>) => this.#call<PushKnobs>('PUT', '/push', knobs);
  channels = async () => (await this.#call<{ items: Channel[] }>('GET', '/channels')).items;
  deliveries = async () => (await this.#call<{ items: Delivery[] }>('GET', '/deliveries')).items;
  /** Waits until every notification sent so far has been answered. */
  pushIdle = () => this.#call<{ deliveries: number }>('POST', '/push/idle');

  advanceClock = async (ms: number) =>
    (await this.#call<{ now: number }>('POST', '/clock', { advanceMs: ms })).now;

  requests = async () => (await this.#call<{ items: RequestRecord[] }>('GET', '/requests')).items;
  clearRequests = () => this.#call<void>('DELETE', '/requests');
}

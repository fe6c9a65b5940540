import {
  type AuthenticationProvider,
  Client,
  type FetchOptions,
  GraphError,
  PageIterator,
  type PageCollection,
  ResponseType,
} from '@microsoft/microsoft-graph-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GraphEmulator, startGraphEmulator } from './graph-emulator.js';
import { utc } from './graph-test-client.js';
import { HooksReceiver } from './hooks-receiver.js';

/**
 * The official Microsoft Graph JavaScript client (v3) against the emulator over https. The SDK only
 * attaches tokens to https URLs of Graph or of its custom hosts, so this is the emulator as a real
 * client sees it: a token from the token endpoint, the certificate trusted as a CA (nothing disabled),
 * and every link it follows built by the emulator from the address called.
 */

let emulator: GraphEmulator;
let agent: Agent;
let client: Client;
let hooks: HooksReceiver;
let tokenCalls = 0;
let auth: TokenEndpointProvider;

/** An OAuth client's refresh grant at the emulator's token endpoint, through the trusting agent. */
class TokenEndpointProvider implements AuthenticationProvider {
  #access: string | null = null;
  #refresh: string | null = null;

  /** Forgets both tokens: after the emulator's reset they name nothing. */
  forget(): void {
    this.#access = null;
    this.#refresh = null;
  }

  async getAccessToken(): Promise<string> {
    if (this.#access) return this.#access;
    this.#refresh ??= emulator.control.mintToken().refreshToken;
    const response = await undiciFetch(emulator.tokenUrl, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: this.#refresh!,
        client_id: emulator.clientId,
        client_secret: emulator.clientSecret ?? '',
        scope: 'offline_access Calendars.ReadWrite',
      }).toString(),
    });
    const body = (await response.json()) as { access_token?: string; refresh_token?: string };
    if (response.status !== 200 || !body.access_token)
      throw new Error(`token endpoint answered ${response.status}`);
    tokenCalls++;
    this.#refresh = body.refresh_token ?? this.#refresh;
    this.#access = body.access_token;
    return this.#access;
  }
}

beforeAll(async () => {
  emulator = await startGraphEmulator({ tls: true });
  hooks = await new HooksReceiver().start();
  expect(emulator.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  agent = new Agent({ connect: { ca: emulator.caCertificate! } });
  auth = new TokenEndpointProvider();
  client = Client.initWithMiddleware({
    authProvider: auth,
    baseUrl: emulator.apiUrl.replace(/\/v1\.0$/, ''),
    defaultVersion: 'v1.0',
    customHosts: new Set(['127.0.0.1']),
    // Node's fetch is undici's: `dispatcher` is its extension of RequestInit, unknown to the SDK's types.
    fetchOptions: { dispatcher: agent } as unknown as FetchOptions,
  });
});
afterAll(async () => {
  await hooks?.stop();
  await emulator?.stop();
  await agent?.close();
});
beforeEach(() => {
  emulator.control.reset();
  auth.forget();
});
afterEach(() => {
  emulator.control.clearFaults();
});

async function graphErrorOf(promise: Promise<unknown>): Promise<GraphError> {
  const error: unknown = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof GraphError)) throw new Error(`expected a GraphError, got ${String(error)}`);
  return error;
}

const meeting = (day: number, extra: Record<string, unknown> = {}) => ({
  subject: `Meeting ${day}`,
  start: utc(`2026-12-0${day}T09:00:00`),
  end: utc(`2026-12-0${day}T10:00:00`),
  ...extra,
});

describe('@microsoft/microsoft-graph-client against the https emulator', () => {
  it('refuses a client that does not trust the certificate', async () => {
    await expect(fetch(`${emulator.apiUrl}/me`)).rejects.toThrow();
  });

  it('lists calendars with a token from the token endpoint', async () => {
    const before = tokenCalls;
    const calendars = (await client.api('/me/calendars').get()) as {
      value: { isDefaultCalendar: boolean }[];
    };
    expect(calendars.value.filter((c) => c.isDefaultCalendar)).toHaveLength(1);
    const request = emulator.control.requests().at(-1)!;
    expect(request).toMatchObject({ method: 'GET', path: '/v1.0/me/calendars', status: 200 });
    expect(tokenCalls - before).toBeLessThanOrEqual(1);
  });

  it('creates with transactionId once, gets, updates with If-Match, and deletes', async () => {
    const body = meeting(1, { transactionId: 'sdk-tx-1' });
    const created = (await client.api('/me/events').post(body)) as Record<string, string>;
    const retried = (await client.api('/me/events').post({ ...body, subject: 'Retried' })) as Record<
      string,
      string
    >;
    expect(retried.id).toBe(created.id);
    expect(emulator.control.state.mailbox.items('primary')).toHaveLength(1);

    const path = `/me/events/${encodeURIComponent(created.id!)}`;
    const read = (await client.api(path).get()) as Record<string, string>;
    expect(read).toMatchObject({ id: created.id, subject: 'Meeting 1', transactionId: 'sdk-tx-1' });

    const etag = read['@odata.etag']!;
    const updated = (await client.api(path).header('If-Match', etag).patch({ subject: 'Renamed' })) as Record<
      string,
      string
    >;
    expect(updated.subject).toBe('Renamed');
    expect(updated['@odata.etag']).not.toBe(etag);
    const stale = await graphErrorOf(client.api(path).header('If-Match', etag).patch({ subject: 'Lost' }));
    expect(stale).toMatchObject({ statusCode: 412, code: 'ErrorIrresolvableConflict' });

    await client.api(path).header('If-Match', updated['@odata.etag']!).delete();
    const gone = await graphErrorOf(client.api(path).get());
    expect(gone).toMatchObject({ statusCode: 404, code: 'ErrorItemNotFound' });
  });

  it('follows calendarView/delta nextLinks with PageIterator, then the deltaLink with .api()', async () => {
    const ids: string[] = [];
    for (let day = 1; day <= 5; day++) {
      ids.push(((await client.api('/me/events').post(meeting(day))) as { id: string }).id);
    }
    const prefer = { Prefer: 'odata.maxpagesize=2' };
    const first = (await client
      .api('/me/calendarView/delta')
      .query({ startDateTime: '2026-11-01T00:00:00Z', endDateTime: '2027-01-01T00:00:00Z' })
      .headers(prefer)
      .get()) as PageCollection;
    expect(first['@odata.nextLink']).toMatch(
      new RegExp(`^${emulator.apiUrl}/me/calendarView/delta\\?\\$skiptoken=`),
    );
    const seen: string[] = [];
    const iterator = new PageIterator(
      client,
      first,
      (item: { id: string }) => {
        seen.push(item.id);
        return true;
      },
      { headers: prefer },
    );
    await iterator.iterate();
    expect(iterator.isComplete()).toBe(true);
    expect(seen.sort()).toEqual([...ids].sort());
    const deltaLink = iterator.getDeltaLink()!;
    expect(deltaLink).toMatch(new RegExp(`^${emulator.apiUrl}/me/calendarView/delta\\?\\$deltatoken=`));
    const pages = emulator.control.requests().filter((r) => r.path.endsWith('/calendarView/delta'));
    expect(pages).toHaveLength(3);

    await client.api(`/me/events/${encodeURIComponent(ids[0]!)}`).patch({ subject: 'Changed' });
    await client.api(`/me/events/${encodeURIComponent(ids[1]!)}`).delete();
    const next = (await client.api(deltaLink).get()) as PageCollection;
    const changed = next.value.filter((i: { '@removed'?: unknown }) => !i['@removed']);
    const removed = next.value.filter((i: { '@removed'?: unknown }) => i['@removed']);
    expect(changed.map((i: { id: string; subject: string }) => [i.id, i.subject])).toEqual([
      [ids[0], 'Changed'],
    ]);
    expect(removed.map((i: { id: string }) => i.id)).toEqual([ids[1]]);
    expect(next['@odata.deltaLink']).toMatch(/\$deltatoken=/);
  });

  it('a lost sync state is a GraphError 410 SyncStateNotFound, and its Location starts over', async () => {
    await client.api('/me/events').post(meeting(3));
    const first = (await client
      .api('/me/calendarView/delta')
      .query({ startDateTime: '2026-11-01T00:00:00Z', endDateTime: '2027-01-01T00:00:00Z' })
      .get()) as PageCollection;
    const deltaLink = first['@odata.deltaLink']!;
    emulator.control.expireDeltaTokens();
    const expired = await graphErrorOf(client.api(deltaLink).get());
    expect(expired).toMatchObject({ statusCode: 410, code: 'SyncStateNotFound' });

    emulator.control.addFault({ kind: 410, delta: 'start', nth: 1 });
    const raw = await client
      .api('/me/calendarView/delta')
      .query({ startDateTime: '2026-11-01T00:00:00Z', endDateTime: '2027-01-01T00:00:00Z' })
      .responseType(ResponseType.RAW)
      .get();
    const response = raw as Response;
    expect(response.status).toBe(410);
    const location = response.headers.get('location')!;
    expect(location).toMatch(
      new RegExp(`^${emulator.apiUrl}/me/calendarView/delta\\?\\$deltatoken=&startDateTime=`),
    );
    const restarted = (await client.api(location).get()) as PageCollection;
    expect(restarted.value).toHaveLength(1);
    expect(restarted['@odata.deltaLink']).toMatch(/\$deltatoken=/);
  });

  it('creates, renews and deletes a subscription after the validation handshake', async () => {
    hooks.echo = 'decoded';
    const validations = hooks.validations.length;
    const created = (await client.api('/subscriptions').post({
      changeType: 'created,updated,deleted',
      notificationUrl: `${hooks.origin}/hooks/outlook`,
      lifecycleNotificationUrl: `${hooks.origin}/hooks/outlook/lifecycle`,
      resource: 'me/events',
      expirationDateTime: new Date(Date.now() + 3600_000).toISOString(),
      clientState: 'sdk-secret',
    })) as { id: string; expirationDateTime: string };
    expect(hooks.validations.slice(validations)).toEqual(['/hooks/outlook', '/hooks/outlook/lifecycle']);

    const event = (await client.api('/me/events').post(meeting(4))) as { id: string };
    const hook = await hooks.waitFor('/hooks/outlook', (body) =>
      ((body as { value?: { resourceData?: { id?: string } }[] }).value ?? []).some(
        (n) => n.resourceData?.id === event.id,
      ),
    );
    expect((hook.body as { value: { clientState: string }[] }).value[0]!.clientState).toBe('sdk-secret');

    const later = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const renewed = (await client
      .api(`/subscriptions/${created.id}`)
      .patch({ expirationDateTime: later })) as { expirationDateTime: string };
    expect(Date.parse(renewed.expirationDateTime)).toBe(Date.parse(later));

    await client.api(`/subscriptions/${created.id}`).delete();
    const missing = await graphErrorOf(
      client.api(`/subscriptions/${created.id}`).patch({ expirationDateTime: later }),
    );
    expect(missing.statusCode).toBe(404);

    const refused = await graphErrorOf(
      client.api('/subscriptions').post({
        changeType: 'created',
        notificationUrl: `${hooks.origin}/hooks/outlook`,
        resource: 'me/calendars/some-calendar/events',
        expirationDateTime: later,
        clientState: 'x',
      }),
    );
    expect(refused.statusCode).toBe(400);
  });
});

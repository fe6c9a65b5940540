import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Auth, type calendar_v3, Common, google } from 'googleapis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainRequest } from './control-client.js';
import { type GoogleEmulator, startGoogleEmulator } from './emulator.js';
import { EVENTS_SCOPE } from './test-clients.js';

/**
 * The official `googleapis` client against the emulator over https: it must take every answer as
 * Google's (bodies, paging, sync tokens, errors). The client trusts the emulator's certificate through
 * an https.Agent passed to it, never through the process environment.
 */

const REDIRECT = 'http://127.0.0.1:9/oauth/callback';
const FREEBUSY_SCOPE = 'https://www.googleapis.com/auth/calendar.freebusy';

let emulator: GoogleEmulator;
let agent: https.Agent;
let auth: Auth.OAuth2Client;
let calendar: calendar_v3.Calendar;
let calendarId: string;
let granted: Auth.Credentials;

const notifications: http.IncomingHttpHeaders[] = [];
const receiver = http.createServer((request, response) => {
  notifications.push(request.headers);
  request.resume();
  response.writeHead(200).end();
});
let hook = '';

beforeAll(async () => {
  emulator = await startGoogleEmulator({ tls: true });
  agent = new https.Agent({ ca: emulator.caCertificate! });
  auth = new Auth.OAuth2Client({
    clientId: emulator.clientId,
    clientSecret: emulator.clientSecret,
    redirectUri: REDIRECT,
    endpoints: {
      oauth2AuthBaseUrl: emulator.authUrl,
      oauth2TokenUrl: emulator.tokenUrl,
      oauth2RevokeUrl: emulator.revokeUrl,
    },
    transporterOptions: { agent },
    // Without it the SDK trusts expiry_date alone and never refreshes on a 401 before then.
    forceRefreshOnFailure: true,
  });
  calendar = google.calendar({ version: 'v3', auth, rootUrl: `${emulator.url}/`, agent });
  granted = await consent();
  auth.setCredentials(granted);
  calendarId = (await emulator.control.createCalendar({ timeZone: 'Europe/Berlin' })).id;
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/google`;
});
afterAll(async () => {
  await emulator?.stop();
  agent?.destroy();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

/** The consent dance as an app does it with the SDK: PKCE, the redirect, then the code exchange. */
async function consent(): Promise<Auth.Credentials> {
  const { codeVerifier, codeChallenge } = await auth.generateCodeVerifierAsync();
  const url = auth.generateAuthUrl({
    access_type: 'offline',
    scope: [EVENTS_SCOPE, FREEBUSY_SCOPE],
    state: 'st-1',
    code_challenge: codeChallenge!,
    code_challenge_method: Auth.CodeChallengeMethod.S256,
  });
  expect(url.startsWith(`${emulator.authUrl}?`)).toBe(true);
  const redirect = await plainRequest(new URL(url), { ca: emulator.caCertificate! });
  expect(redirect.status).toBe(302);
  const back = new URL(String(redirect.headers.location));
  expect(back.searchParams.get('state')).toBe('st-1');
  const { tokens } = await auth.getToken({ code: back.searchParams.get('code')!, codeVerifier });
  return tokens;
}

/** The SDK's failure for a call that must fail: a GaxiosError with Google's status and reason. */
async function refusal(
  call: Promise<unknown>,
): Promise<{ status: number; reason: string; error: Common.GaxiosError }> {
  const error: unknown = await call.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof Common.GaxiosError)) throw new Error(`expected a GaxiosError, got ${String(error)}`);
  const data = error.response?.data as { error?: { errors?: { reason?: string }[] } } | undefined;
  return { status: error.status ?? 0, reason: data?.error?.errors?.[0]?.reason ?? '', error };
}

const timed = (summary: string, day: number): calendar_v3.Schema$Event => ({
  summary,
  start: { dateTime: `2026-03-${String(day).padStart(2, '0')}T10:00:00+01:00`, timeZone: 'Europe/Berlin' },
  end: { dateTime: `2026-03-${String(day).padStart(2, '0')}T11:00:00+01:00`, timeZone: 'Europe/Berlin' },
});

describe('googleapis against the emulator over https', () => {
  it('gets tokens through the SDK: PKCE consent and code exchange, then a refresh on 401', async () => {
    expect(granted).toMatchObject({ token_type: 'Bearer', scope: `${EVENTS_SCOPE} ${FREEBUSY_SCOPE}` });
    expect(typeof granted.access_token).toBe('string');
    expect(typeof granted.refresh_token).toBe('string');
    expect(granted.expiry_date).toBeGreaterThan(Date.now());

    // An access token the server has expired: the SDK meets a 401, refreshes, and retries once.
    expect(await emulator.control.expireAccessTokens()).toBeGreaterThan(0);
    await emulator.control.clearRequests();
    const answer = await calendar.events.list({ calendarId });
    expect(answer.status).toBe(200);
    expect((await emulator.control.requests()).map((r) => r.status)).toEqual([401, 200]);
    expect(auth.credentials.access_token).not.toBe(granted.access_token);
  });

  it('inserts, gets, patches with If-Match and deletes; each refusal is a GaxiosError', async () => {
    const inserted = await calendar.events.insert({
      calendarId,
      sendUpdates: 'none',
      requestBody: { ...timed('Planning', 2), id: 'sdk0insert0001' },
    });
    expect(inserted.status).toBe(200);
    const event = inserted.data;
    expect(event).toMatchObject({
      kind: 'calendar#event',
      id: 'sdk0insert0001',
      iCalUID: 'sdk0insert0001@google.com',
      status: 'confirmed',
      summary: 'Planning',
      start: { dateTime: '2026-03-02T10:00:00+01:00', timeZone: 'Europe/Berlin' },
      sequence: 0,
    });
    expect(event.etag).toMatch(/^"\d+"$/);
    expect(Number.isNaN(Date.parse(event.created!))).toBe(false);

    const again = await refusal(
      calendar.events.insert({ calendarId, requestBody: { ...timed('Twice', 2), id: 'sdk0insert0001' } }),
    );
    expect([again.status, again.reason]).toEqual([409, 'duplicate']);
    const badId = await refusal(
      calendar.events.insert({ calendarId, requestBody: { ...timed('Bad', 2), id: 'NOT-base32hex' } }),
    );
    expect([badId.status, badId.reason]).toEqual([400, 'invalid']);

    const got = await calendar.events.get({ calendarId, eventId: 'sdk0insert0001' });
    expect(got.data).toEqual(event);
    const missing = await refusal(calendar.events.get({ calendarId, eventId: 'nosuchevent0' }));
    expect([missing.status, missing.reason]).toEqual([404, 'notFound']);

    const patched = await calendar.events.patch(
      {
        calendarId,
        eventId: event.id!,
        requestBody: { ...timed('Planning (moved)', 3), description: 'room 2' },
      },
      { headers: { 'If-Match': event.etag! } },
    );
    expect(patched.data).toMatchObject({ summary: 'Planning (moved)', description: 'room 2', sequence: 1 });
    expect(patched.data.etag).not.toBe(event.etag);
    const stale = await refusal(
      calendar.events.patch(
        { calendarId, eventId: event.id!, requestBody: { summary: 'late' } },
        { headers: { 'If-Match': event.etag! } },
      ),
    );
    expect([stale.status, stale.reason]).toEqual([412, 'conditionNotMet']);
    expect(stale.error.response?.status).toBe(412);

    const removed = await calendar.events.delete({ calendarId, eventId: event.id!, sendUpdates: 'none' });
    expect(removed.status).toBe(204);
    expect(removed.data).toBe('');
    const twice = await refusal(calendar.events.delete({ calendarId, eventId: event.id! }));
    expect([twice.status, twice.reason]).toEqual([410, 'deleted']);
    const tombstone = await calendar.events.get({ calendarId, eventId: event.id! });
    expect(tombstone.data.status).toBe('cancelled');
  });

  it('pages with pageToken, syncs with syncToken, and meets 410 once the token expires', async () => {
    const { id: pagedId } = await emulator.control.createCalendar();
    for (let day = 10; day < 15; day++) {
      await calendar.events.insert({ calendarId: pagedId, requestBody: timed(`Day ${day}`, day) });
    }
    const listAll = async (params: calendar_v3.Params$Resource$Events$List) => {
      const pages: calendar_v3.Schema$Events[] = [];
      let pageToken: string | undefined;
      do {
        const { data } = await calendar.events.list({
          ...params,
          calendarId: pagedId,
          maxResults: 2,
          pageToken,
        });
        pages.push(data);
        pageToken = data.nextPageToken ?? undefined;
      } while (pageToken);
      return pages;
    };
    const full = await listAll({});
    expect(full.map((page) => page.items?.length)).toEqual([2, 2, 1]);
    expect(full.map((page) => page.nextSyncToken === undefined)).toEqual([true, true, false]);
    expect(full[0]).toMatchObject({ kind: 'calendar#events', accessRole: 'owner', timeZone: 'UTC' });
    const items = full.flatMap((page) => page.items ?? []);
    expect(items.map((item) => item.summary)).toEqual(['Day 10', 'Day 11', 'Day 12', 'Day 13', 'Day 14']);

    const [first, second, third] = items;
    await calendar.events.patch(
      { calendarId: pagedId, eventId: first!.id!, requestBody: { summary: 'Day 10 (changed)' } },
      { headers: { 'If-Match': first!.etag! } },
    );
    await calendar.events.delete({ calendarId: pagedId, eventId: second!.id! });
    await emulator.control.patchEvent(pagedId, third!.id!, { location: 'by the user' });
    const changes = await listAll({ syncToken: full.at(-1)!.nextSyncToken! });
    const changed = changes.flatMap((page) => page.items ?? []);
    expect(changed.map((item) => [item.id, item.status])).toEqual([
      [first!.id, 'confirmed'],
      [second!.id, 'cancelled'],
      [third!.id, 'confirmed'],
    ]);
    expect(changed[1]).toEqual({
      kind: 'calendar#event',
      etag: expect.any(String),
      id: second!.id,
      status: 'cancelled',
    });
    const nextToken = changes.at(-1)!.nextSyncToken!;
    expect(nextToken).toEqual(expect.any(String));
    const quiet = await listAll({ syncToken: nextToken });
    expect(quiet.flatMap((page) => page.items ?? [])).toEqual([]);

    const restricted = await refusal(
      calendar.events.list({ calendarId: pagedId, syncToken: nextToken, q: 'Day' }),
    );
    expect(restricted.status).toBe(400);
    await emulator.control.expireSyncTokens(pagedId);
    const gone = await refusal(calendar.events.list({ calendarId: pagedId, syncToken: nextToken }));
    expect([gone.status, gone.reason]).toEqual([410, 'fullSyncRequired']);
    expect(gone.error.response?.data).toMatchObject({ error: { code: 410 } });
  });

  it('watches events, is notified, and stops the channel', async () => {
    notifications.length = 0;
    const watched = await calendar.events.watch({
      calendarId,
      requestBody: {
        id: 'sdk-channel-1',
        type: 'web_hook',
        address: hook,
        token: 'secret-1',
        params: { ttl: '3600' },
      },
    });
    expect(watched.status).toBe(200);
    const channel = watched.data;
    expect(channel).toMatchObject({ kind: 'api#channel', id: 'sdk-channel-1', token: 'secret-1' });
    expect(channel.resourceUri).toBe(
      `${emulator.apiUrl}/calendars/${encodeURIComponent(calendarId)}/events?alt=json`,
    );
    expect(Number(channel.expiration) - Date.now()).toBeGreaterThan(3_500_000);
    await calendar.events.insert({ calendarId, requestBody: timed('Notified', 20) });
    await emulator.control.pushIdle();
    expect(notifications.map((h) => [h['x-goog-channel-id'], h['x-goog-resource-state']])).toEqual([
      ['sdk-channel-1', 'sync'],
      ['sdk-channel-1', 'exists'],
    ]);
    expect(notifications[1]!['x-goog-resource-uri']).toBe(channel.resourceUri);

    const stopped = await calendar.channels.stop({
      requestBody: { id: channel.id!, resourceId: channel.resourceId! },
    });
    expect(stopped.status).toBe(204);
    await calendar.events.insert({ calendarId, requestBody: timed('Unheard', 21) });
    await emulator.control.pushIdle();
    expect(notifications).toHaveLength(2);
    const unknown = await refusal(
      calendar.channels.stop({ requestBody: { id: 'no-such-channel', resourceId: channel.resourceId! } }),
    );
    expect([unknown.status, unknown.reason]).toEqual([404, 'notFound']);
    const refused = await refusal(
      calendar.events.watch({
        calendarId,
        requestBody: { id: 'sdk-channel-2', type: 'web_hook', address: 'https://example.com/hook' },
      }),
    );
    expect([refused.status, refused.reason]).toEqual([400, 'push.webhookUrlUnauthorized']);
  });

  it('queries free/busy: merged busy periods, and an error entry for an unknown calendar', async () => {
    const { id: busyId } = await emulator.control.createCalendar();
    await calendar.events.insert({ calendarId: busyId, requestBody: timed('A', 24) });
    await calendar.events.insert({
      calendarId: busyId,
      requestBody: {
        start: { dateTime: '2026-03-24T10:30:00+01:00' },
        end: { dateTime: '2026-03-24T12:00:00+01:00' },
      },
    });
    await calendar.events.insert({
      calendarId: busyId,
      requestBody: { ...timed('Free', 25), transparency: 'transparent' },
    });
    const { data } = await calendar.freebusy.query({
      requestBody: {
        timeMin: '2026-03-01T00:00:00Z',
        timeMax: '2026-04-01T00:00:00Z',
        items: [{ id: busyId }, { id: 'nobody@example.com' }],
      },
    });
    expect(data.kind).toBe('calendar#freeBusy');
    expect(data.calendars?.[busyId]?.busy).toEqual([
      { start: '2026-03-24T09:00:00Z', end: '2026-03-24T11:00:00Z' },
    ]);
    expect(data.calendars?.['nobody@example.com']?.errors).toEqual([
      { domain: 'global', reason: 'notFound' },
    ]);

    const empty = await refusal(
      calendar.freebusy.query({
        requestBody: {
          timeMin: '2026-03-02T00:00:00Z',
          timeMax: '2026-03-01T00:00:00Z',
          items: [{ id: busyId }],
        },
      }),
    );
    expect([empty.status, empty.reason]).toEqual([400, 'timeRangeEmpty']);
  });
});

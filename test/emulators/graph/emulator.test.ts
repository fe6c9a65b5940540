import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type GraphEmulator, startGraphEmulator } from './graph-emulator.js';
import { graphCaller, utc } from './graph-test-client.js';

let emulator: GraphEmulator;
const call = graphCaller(() => emulator);

beforeAll(async () => {
  emulator = await startGraphEmulator();
});
afterAll(async () => {
  await emulator?.stop();
});
afterEach(() => {
  emulator.control.clearFaults();
});

const event = (extra: Record<string, unknown> = {}) => ({
  subject: 'Plain',
  start: utc('2026-12-01T09:00:00'),
  end: utc('2026-12-01T10:00:00'),
  ...extra,
});
const PROP = 'String {78cc33b7-76a6-466c-923d-30c10ba4e527} Name schedBookingId';

describe('identity platform', () => {
  const redirectUri = 'http://127.0.0.1:9/oauth/outlook/callback';
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');

  async function authorize(extra: Record<string, string> = {}): Promise<URL> {
    const url = new URL(emulator.authUrl);
    const params = {
      client_id: emulator.clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'offline_access Calendars.ReadWrite',
      state: 'st-1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...extra,
    };
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(302);
    return new URL(response.headers.get('location')!);
  }

  async function tokenCall(form: Record<string, string>) {
    const response = await fetch(emulator.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: emulator.clientId,
        client_secret: emulator.clientSecret!,
        ...form,
      }).toString(),
    });
    return { status: response.status, json: (await response.json()) as Record<string, any> };
  }

  const redeem = (code: string, codeVerifier = verifier) =>
    tokenCall({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: codeVerifier,
    });

  it('authorize redirects with a code and the state; a PKCE mismatch is invalid_grant', async () => {
    const back = await authorize();
    expect(back.origin + back.pathname).toBe(redirectUri);
    expect(back.searchParams.get('state')).toBe('st-1');
    const code = back.searchParams.get('code')!;
    const wrong = await redeem(code, randomBytes(32).toString('base64url'));
    expect(wrong.status).toBe(400);
    expect(wrong.json.error).toBe('invalid_grant');
    expect(wrong.json.error_description).toMatch(/^AADSTS501481:/);
  });

  it('a code is redeemed once; refresh rotates and the old refresh token keeps working', async () => {
    const code = (await authorize()).searchParams.get('code')!;
    const first = await redeem(code);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ token_type: 'Bearer', expires_in: 3599 });
    expect(first.json.scope).toContain('https://graph.microsoft.com/Calendars.ReadWrite');
    expect((await redeem(code)).json.error_description).toMatch(/^AADSTS54005:/);

    const refreshed = await tokenCall({
      grant_type: 'refresh_token',
      refresh_token: first.json.refresh_token,
    });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.refresh_token).toBeTruthy();
    expect(refreshed.json.refresh_token).not.toBe(first.json.refresh_token);
    expect(refreshed.json.access_token).not.toBe(first.json.access_token);
    const old = await tokenCall({ grant_type: 'refresh_token', refresh_token: first.json.refresh_token });
    expect(old.status).toBe(200);
    const me = await fetch(`${emulator.apiUrl}/me`, {
      headers: { authorization: `Bearer ${refreshed.json.access_token}` },
    });
    expect(me.status).toBe(200);
  });

  it('a revoked refresh token is invalid_grant with an AADSTS description; wrong secrets are invalid_client', async () => {
    const code = (await authorize()).searchParams.get('code')!;
    const grant = await redeem(code);
    expect(emulator.control.revokeRefreshTokens(grant.json.refresh_token)).toBe(1);
    const refused = await tokenCall({ grant_type: 'refresh_token', refresh_token: grant.json.refresh_token });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toBe('invalid_grant');
    expect(refused.json.error_description).toMatch(/^AADSTS50173:/);
    expect(refused.json.error_codes).toEqual([50173]);
    const badSecret = await tokenCall({
      grant_type: 'refresh_token',
      refresh_token: 'x',
      client_secret: 'nope',
    });
    expect(badSecret).toMatchObject({ status: 401, json: { error: 'invalid_client' } });
  });

  it('a denied consent comes back as error=access_denied; without offline_access there is no refresh token', async () => {
    emulator.control.denyNextAuthorization();
    const denied = await authorize();
    expect(denied.searchParams.get('error')).toBe('access_denied');
    expect(denied.searchParams.get('state')).toBe('st-1');
    const code = (await authorize({ scope: 'Calendars.ReadWrite' })).searchParams.get('code')!;
    const grant = await redeem(code);
    expect(grant.json.refresh_token).toBeUndefined();
  });

  it('Graph calls need a valid, unexpired bearer token with the right scope', async () => {
    const bare = await fetch(`${emulator.apiUrl}/me/events`);
    expect(bare.status).toBe(401);
    expect(((await bare.json()) as any).error.code).toBe('InvalidAuthenticationToken');
    const { accessToken } = emulator.control.mintToken({ ttlSeconds: 60 });
    const readOnly = emulator.control.mintToken({ scopes: ['Calendars.Read'] }).accessToken;
    expect(
      (await fetch(`${emulator.apiUrl}/me/events`, { headers: { authorization: `Bearer ${readOnly}` } }))
        .status,
    ).toBe(200);
    const write = await fetch(`${emulator.apiUrl}/me/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${readOnly}`, 'content-type': 'application/json' },
      body: JSON.stringify(event()),
    });
    expect(write.status).toBe(403);
    emulator.control.advanceTime(61_000);
    const expired = await fetch(`${emulator.apiUrl}/me/events`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as any).error.message).toMatch(/expired/);
    emulator.control.advanceTime(-61_000);
  });
});

describe('events', () => {
  it('CRUD with changeKey, weak etags and If-Match → 412 ErrorIrresolvableConflict', async () => {
    const created = await call('POST', 'me/events', event());
    expect(created.status).toBe(201);
    expect(created.json['@odata.etag']).toBe(`W/"${created.json.changeKey}"`);
    const updated = await call(
      'PATCH',
      `me/events/${created.json.id}`,
      { subject: 'Renamed' },
      { 'if-match': created.json['@odata.etag'] },
    );
    expect(updated.status).toBe(200);
    expect(updated.json.changeKey).not.toBe(created.json.changeKey);
    const stale = await call(
      'PATCH',
      `me/events/${created.json.id}`,
      { subject: 'Again' },
      { 'if-match': created.json['@odata.etag'] },
    );
    expect(stale.status).toBe(412);
    expect(stale.json.error.code).toBe('ErrorIrresolvableConflict');
    expect(stale.json.error.innerError['request-id']).toBeTruthy();
    expect(
      (
        await call('DELETE', `me/events/${created.json.id}`, undefined, {
          'if-match': created.json['@odata.etag'],
        })
      ).status,
    ).toBe(412);
    expect((await call('DELETE', `me/events/${created.json.id}`)).status).toBe(204);
    const gone = await call('GET', `me/events/${created.json.id}`);
    expect(gone.status).toBe(404);
    expect(gone.json.error.code).toBe('ErrorItemNotFound');
  });

  it('the same transactionId returns the same event and makes no second one', async () => {
    const calendar = emulator.control.createCalendar('tx');
    const path = `me/calendars/${calendar.id}/events`;
    const first = await call('POST', path, event({ transactionId: 'tx-1' }));
    const second = await call('POST', path, event({ transactionId: 'tx-1', subject: 'Retry' }));
    expect(second.status).toBe(201);
    expect(second.json.id).toBe(first.json.id);
    expect(second.json.subject).toBe('Plain');
    expect((await call('GET', path)).json.value).toHaveLength(1);
  });

  it('singleValueExtendedProperties: left out of the create answer, $expand reads them, $filter finds them', async () => {
    const created = await call(
      'POST',
      'me/events',
      event({ singleValueExtendedProperties: [{ id: PROP, value: "o'brien" }] }),
    );
    expect(created.json.singleValueExtendedProperties).toBeUndefined();
    const expand = encodeURIComponent(`singleValueExtendedProperties($filter=id eq '${PROP}')`);
    const read = await call('GET', `me/events/${created.json.id}?$expand=${expand}`);
    expect(read.json.singleValueExtendedProperties).toEqual([{ id: PROP, value: "o'brien" }]);
    const filter = encodeURIComponent(
      `singleValueExtendedProperties/Any(ep: ep/id eq '${PROP}' and ep/value eq 'o''brien')`,
    );
    const found = await call('GET', `me/events?$filter=${filter}`);
    expect(found.json.value.map((e: any) => e.id)).toEqual([created.json.id]);
    const bad = await call('GET', `me/events?$filter=${encodeURIComponent('contains(subject, 1)')}`);
    expect(bad.status).toBe(400);
  });

  it('answers in UTC by default and in the Prefer: outlook.timezone zone; all-day stays midnight to midnight', async () => {
    const timed = await call(
      'POST',
      'me/events',
      event({
        start: { dateTime: '2026-07-01T09:00:00', timeZone: 'Pacific Standard Time' },
        end: { dateTime: '2026-07-01T10:00:00', timeZone: 'Pacific Standard Time' },
      }),
    );
    expect(timed.json.start).toEqual({ dateTime: '2026-07-01T16:00:00.0000000', timeZone: 'UTC' });
    expect(timed.json.originalStartTimeZone).toBe('Pacific Standard Time');
    const local = await call('GET', `me/events/${timed.json.id}`, undefined, {
      prefer: 'outlook.timezone="Tokyo Standard Time"',
    });
    expect(local.json.start).toEqual({
      dateTime: '2026-07-02T01:00:00.0000000',
      timeZone: 'Tokyo Standard Time',
    });
    const allDay = await call(
      'POST',
      'me/events',
      event({
        isAllDay: true,
        start: { dateTime: '2026-07-04T00:00:00', timeZone: 'Tokyo Standard Time' },
        end: { dateTime: '2026-07-05T00:00:00', timeZone: 'Tokyo Standard Time' },
      }),
    );
    expect(allDay.json.start).toEqual({ dateTime: '2026-07-04T00:00:00.0000000', timeZone: 'UTC' });
    const notMidnight = await call('POST', 'me/events', event({ isAllDay: true }));
    expect(notMidnight.status).toBe(400);
  });

  it('default ids change when the item moves to another calendar; immutable ids do not', async () => {
    const created = await call('POST', 'me/events', event(), { prefer: '' });
    const immutable = (await call('GET', `me/events/${created.json.id}`)).json.id;
    expect(immutable).not.toBe(created.json.id);
    const other = emulator.control.createCalendar('elsewhere');
    const moved = emulator.control.moveEvent(immutable, other.id);
    expect(moved.immutableId).toBe(immutable);
    expect(moved.id).not.toBe(created.json.id);
    expect((await call('GET', `me/events/${created.json.id}`, undefined, { prefer: '' })).status).toBe(404);
    expect((await call('GET', `me/events/${immutable}`)).status).toBe(200);
  });
});

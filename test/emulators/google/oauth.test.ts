import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GoogleEmulator, startGoogleEmulator } from './emulator.js';
import {
  apiClient,
  EVENTS_SCOPE,
  errorReason as reason,
  exchangeCode,
  formPost as form,
  startAuthorization,
} from './test-clients.js';

const REDIRECT = 'http://127.0.0.1:9/callback';

let emulator: GoogleEmulator;
let bearer: string;
let calendar: string;

beforeAll(async () => {
  emulator = await startGoogleEmulator({ clientId: 'cid.apps.googleusercontent.com', clientSecret: 'shh' });
});
afterAll(() => emulator?.stop());
beforeEach(async () => {
  await emulator.control.reset();
  bearer = (await emulator.control.mintTokens()).access_token;
  calendar = (await emulator.control.createCalendar()).id;
});

const api = (...args: Parameters<ReturnType<typeof apiClient>>) => apiClient(emulator, () => bearer)(...args);
const events = () => `/calendars/${encodeURIComponent(calendar)}/events`;
const authorizeCode = (overrides: Record<string, string> = {}) =>
  startAuthorization(emulator, REDIRECT, overrides);
const exchange = (code: string, verifier: string) => exchangeCode(emulator, code, verifier, REDIRECT);

describe('OAuth', () => {
  it('runs the code flow with PKCE and refuses a wrong verifier with invalid_grant', async () => {
    const first = await authorizeCode();
    expect(first.response.status).toBe(302);
    expect(first.location.searchParams.get('state')).toBe('xyz');
    const wrong = await exchange(
      first.location.searchParams.get('code')!,
      randomBytes(32).toString('base64url'),
    );
    expect(wrong).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    // A code is single-use, even after a failed exchange.
    const reused = await exchange(first.location.searchParams.get('code')!, first.verifier);
    expect(reused.body.error).toBe('invalid_grant');

    // A refresh token comes with the first consent only (one was minted before), unless asked again.
    const second = await authorizeCode();
    const noRefresh = await exchange(second.location.searchParams.get('code')!, second.verifier);
    expect(noRefresh.status).toBe(200);
    expect(noRefresh.body.refresh_token).toBeUndefined();
    const third = await authorizeCode({ prompt: 'consent' });
    const granted = await exchange(third.location.searchParams.get('code')!, third.verifier);
    expect(granted).toMatchObject({
      status: 200,
      body: { token_type: 'Bearer', expires_in: 3600, scope: EVENTS_SCOPE },
    });
    expect(granted.body.refresh_token).toMatch(/^1\/\//);
    bearer = granted.body.access_token;
    expect((await api('GET', events())).status).toBe(200);
  });

  it('checks the client, the redirect URI, PKCE and consent', async () => {
    expect((await authorizeCode({ client_id: 'nobody' })).response.status).toBe(401);
    const noPkce = await authorizeCode({ code_challenge_method: 'plain' });
    expect(noPkce.location.searchParams.get('error')).toBe('invalid_request');
    await emulator.control.setOAuth({ consent: 'deny' });
    const denied = await authorizeCode();
    expect(Object.fromEntries(denied.location.searchParams)).toEqual({
      error: 'access_denied',
      state: 'xyz',
    });
    await emulator.control.setOAuth({ redirectUris: ['http://127.0.0.1:9/other'] });
    expect((await authorizeCode()).response.status).toBe(400);
    const badSecret = await fetch(
      emulator.tokenUrl,
      form({ grant_type: 'refresh_token', refresh_token: 'x' }, `${emulator.clientId}:nope`),
    );
    expect(badSecret.status).toBe(401);
  });

  it('refreshes, rotates on request, and answers invalid_grant for revoked refresh tokens', async () => {
    const minted = await emulator.control.mintTokens();
    const refresh = (token: string) =>
      fetch(
        emulator.tokenUrl,
        form(
          { grant_type: 'refresh_token', refresh_token: token },
          `${emulator.clientId}:${emulator.clientSecret}`,
        ),
      ).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> }));
    const once = await refresh(minted.refresh_token!);
    expect(once.status).toBe(200);
    expect(once.body.refresh_token).toBeUndefined();

    await emulator.control.setOAuth({ rotateRefreshTokens: true });
    const rotated = await refresh(minted.refresh_token!);
    expect(rotated.body.refresh_token).toBeDefined();
    expect((await refresh(minted.refresh_token!)).body).toEqual({
      error: 'invalid_grant',
      error_description: 'Token has been expired or revoked.',
    });

    const revoke = await fetch(emulator.revokeUrl, form({ token: rotated.body.refresh_token as string }));
    expect(revoke.status).toBe(200);
    expect((await refresh(rotated.body.refresh_token as string)).body.error).toBe('invalid_grant');
    bearer = rotated.body.access_token as string;
    expect((await api('GET', events())).status).toBe(401);
    expect((await fetch(emulator.revokeUrl, form({ token: 'unknown' }))).status).toBe(400);
  });

  it('answers 401 authError without a valid token and 403 for a scope the method does not accept', async () => {
    const expired = await api('GET', events(), { headers: { authorization: 'Bearer nope' } });
    expect(expired.status).toBe(401);
    expect(expired.body.error).toMatchObject({
      code: 401,
      status: 'UNAUTHENTICATED',
      message: 'Invalid Credentials',
    });
    expect(reason(expired)).toBe('authError');
    await emulator.control.expireAccessTokens();
    expect((await api('GET', events())).status).toBe(401);
    bearer = (await emulator.control.mintTokens()).access_token;
    const freeBusy = await api('POST', '/freeBusy', {
      body: { timeMin: '2026-03-01T00:00:00Z', timeMax: '2026-04-01T00:00:00Z', items: [{ id: calendar }] },
    });
    expect([freeBusy.status, reason(freeBusy)]).toEqual([403, 'insufficientPermissions']);
  });
});

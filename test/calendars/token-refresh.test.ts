import { googleSettings } from '../emulators/environment.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionTokens } from '../../src/calendar/store/tokens.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/emulator.js';
import { backends } from '../support/backends.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { storedCredentials } from '../support/credentials.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');

describe('OAuth token refresh across processes (Google emulator, rotating refresh tokens)', () => {
  let emulator: GoogleEmulator;
  let t: TestApp;

  beforeAll(async () => {
    emulator = await startGoogleEmulator();
    t = await startTestApp(pglite, new Date().toISOString(), {
      google: googleSettings(emulator),
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await emulator?.stop();
  });

  it('two holders of one connection refresh once; both get the new token and the rotated one is stored', async () => {
    await emulator.control.setOAuth({ rotateRefreshTokens: true });
    const resource = await t.request('POST', '/resources', {
      body: { name: 'Shared', kind: 'room', time_zone: 'UTC' },
    });
    const minted = await emulator.control.mintTokens();
    const connected = await t.request('POST', '/calendars/google/connect', {
      body: {
        resource_id: resource.json().resource_id,
        oauth_token: minted.access_token,
        refresh_token: minted.refresh_token,
        // Already inside the refresh margin: the next use must refresh.
        expires_at: new Date(Date.now() + 60_000).toISOString(),
        sync: { frequency_minutes: 0 },
      },
    });
    expect(connected.statusCode, connected.body).toBe(201);
    const connectionId = connected.json().connection_id as string;
    const read = () => storedCredentials(t, connectionId);
    const stale = await read();
    const client = t.calendarDeps.connectors.google!.oauth;
    // What two processes would each hold: the same stored credentials, about to expire.
    const first = new ConnectionTokens(t.database.db, t.secretBox, connectionId, client, stale);
    const second = new ConnectionTokens(t.database.db, t.secretBox, connectionId, client, stale);
    const [a, b] = await Promise.all([first.get(), second.get()]);
    expect(a).toBe(b);
    expect(a).not.toBe(stale.access_token);
    const stored = await read();
    expect(stored.access_token).toBe(a);
    expect(stored.refresh_token).not.toBe(stale.refresh_token);
    // The old refresh token is retired: a second refresh with it would have been refused.
    const reuse = await client!.refresh(stale.refresh_token!).then(
      () => 'accepted',
      (error: { code?: string }) => error.code,
    );
    expect(reuse).toBe('AUTH_FAILED');
    expect((await t.request('POST', `/calendars/google/${connectionId}/sync`)).statusCode).toBe(200);
  });
});

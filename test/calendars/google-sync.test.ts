import { googleSettings } from '../emulators/environment.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CalendarSyncWorker } from '../../src/calendar/worker.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/emulator.js';
import { backends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { waitFor } from '../support/wait-for.js';
import { consent as consentAt } from '../support/oauth-consent.js';
import { storedCredentials } from '../support/credentials.js';
import { freePort, startTestApp, type TestApp } from '../support/test-app.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');

describe('Google Calendar through the API, against the emulator', () => {
  let emulator: GoogleEmulator;
  let t: TestApp;
  let counter = 0;

  beforeAll(async () => {
    emulator = await startGoogleEmulator();
    t = await startTestApp(pglite, '2026-05-18T06:00:00Z', {
      google: googleSettings(emulator),
      listenPort: await freePort(),
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await emulator?.stop();
  });

  const newResource = () =>
    createOpenResource(t, { name: `Consultant ${++counter}`, kind: 'person', time_zone: 'Europe/Berlin' });

  const consent = (authorizationUrl: string) => consentAt(t, 'google', authorizationUrl);

  async function connectThroughConsent(
    resourceId: string,
    calendarId: string,
    sync: Record<string, unknown> = {},
  ) {
    const started = await t.request('POST', '/calendars/google/connect', {
      body: { resource_id: resourceId, calendar_id: calendarId, sync: { frequency_minutes: 0, ...sync } },
    });
    expect(started.statusCode, started.body).toBe(200);
    const { authorization_url, state, connection_id } = started.json();
    const url = new URL(authorization_url);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('state')).toBe(state);
    expect(url.searchParams.get('scope')).toBe('https://www.googleapis.com/auth/calendar.events');
    return {
      authorizationUrl: authorization_url as string,
      state: state as string,
      connectionId: connection_id as string,
    };
  }

  const credentialsOf = (connectionId: string) => storedCredentials(t, connectionId);

  async function sync(connectionId: string) {
    return t.request('POST', `/calendars/google/${connectionId}/sync`);
  }

  it('connects through consent: pending until the callback, then active, with tokens sealed', async () => {
    const resourceId = await newResource();
    const calendar = await emulator.control.createCalendar({ summary: 'Work' });
    const { authorizationUrl, connectionId } = await connectThroughConsent(resourceId, calendar.id);
    const pending = await t.request('GET', `/calendars/google/${connectionId}`);
    expect(pending.json()).toMatchObject({ status: 'pending_authorization', calendar_id: calendar.id });
    expect((await sync(connectionId)).json().code).toBe('CALENDAR_NOT_ACTIVE');
    const unchanged = (await t.request('GET', `/calendars/google/${connectionId}`)).json();
    expect(unchanged).toMatchObject({ status: 'pending_authorization', last_error: null });

    const callback = await consent(authorizationUrl);
    expect(callback.statusCode, callback.body).toBe(200);
    expect(callback.json()).toMatchObject({
      message: 'Google Calendar connected successfully.',
      connection: { connection_id: connectionId, status: 'active' },
    });
    const credentials = await credentialsOf(connectionId);
    expect(credentials.refresh_token).toBeTruthy();
    const row = await t.database.db
      .selectFrom('calendar_connections')
      .select('credentials_sealed')
      .where('connection_id', '=', connectionId)
      .executeTakeFirstOrThrow();
    expect(row.credentials_sealed).not.toContain(credentials.access_token);
    // The same authorization again: the state was used once and is gone.
    const replay = await consent(authorizationUrl);
    expect(replay.json()).toMatchObject({ status: 400, code: 'OAUTH_STATE_INVALID' });
    expect((await t.request('GET', `/calendars/google/${connectionId}`)).json().status).toBe('active');
  });

  it('refuses a state it did not issue, a replayed state, a denied consent and a PKCE mismatch', async () => {
    const resourceId = await newResource();
    const calendar = await emulator.control.createCalendar({ summary: 'Edge cases' });
    const first = await connectThroughConsent(resourceId, calendar.id);
    const answer = await fetch(first.authorizationUrl, { redirect: 'manual' });
    const location = new URL(answer.headers.get('location')!);
    const code = location.searchParams.get('code')!;
    const forged = await t.request('GET', `/oauth/google/callback?code=${code}&state=forged-state`, {
      key: null,
    });
    expect(forged.json()).toMatchObject({ status: 400, code: 'OAUTH_STATE_INVALID' });

    // The verifier we hold no longer matches the challenge the provider saw: the exchange is refused.
    await t.database.db
      .updateTable('oauth_authorizations')
      .set({ code_verifier_sealed: t.secretBox.seal('a'.repeat(64)) })
      .where('connection_id', '=', first.connectionId)
      .execute();
    const mismatch = await t.request('GET', `${location.pathname}${location.search}`, { key: null });
    expect(mismatch.json()).toMatchObject({ status: 502, code: 'PROVIDER_AUTH_FAILED' });
    const replayed = await t.request('GET', `${location.pathname}${location.search}`, { key: null });
    expect(replayed.json().code).toBe('OAUTH_STATE_INVALID');

    await emulator.control.setOAuth({ consent: 'deny' });
    try {
      const second = await connectThroughConsent(resourceId, calendar.id);
      const denied = await consent(second.authorizationUrl);
      expect(denied.json()).toMatchObject({ status: 400, code: 'OAUTH_DENIED' });
    } finally {
      await emulator.control.setOAuth({ consent: 'approve' });
    }
    const still = await t.request('GET', `/calendars/google/${first.connectionId}`);
    expect(still.json().status).toBe('pending_authorization');
  });

  it('refreshes an expired access token, stores a rotated refresh token, and stops at a revoked one', async () => {
    const resourceId = await newResource();
    const calendar = await emulator.control.createCalendar({ summary: 'Tokens' });
    const { authorizationUrl, connectionId } = await connectThroughConsent(resourceId, calendar.id);
    await consent(authorizationUrl);
    expect((await sync(connectionId)).statusCode).toBe(200);

    const before = await credentialsOf(connectionId);
    await emulator.control.setOAuth({ rotateRefreshTokens: true });
    await emulator.control.expireAccessTokens();
    const refreshed = await sync(connectionId);
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    const after = await credentialsOf(connectionId);
    expect(after.access_token).not.toBe(before.access_token);
    expect(after.refresh_token).not.toBe(before.refresh_token);
    await emulator.control.setOAuth({ rotateRefreshTokens: false });

    await t.request('POST', '/webhooks', {
      body: { url: 'https://hooks.example.invalid/sched', events: ['calendar.reauth_required'] },
    });
    await emulator.control.revokeRefreshTokens();
    await emulator.control.expireAccessTokens();
    const refused = await sync(connectionId);
    expect(refused.json()).toMatchObject({ status: 502, code: 'PROVIDER_AUTH_FAILED' });
    const shown = (await t.request('GET', `/calendars/google/${connectionId}`)).json();
    expect(shown.status).toBe('reauth_required');
    expect(shown.last_error).toMatch(/invalid_grant/);
    const row = await t.database.db
      .selectFrom('calendar_connections')
      .select('next_sync_at')
      .where('connection_id', '=', connectionId)
      .executeTakeFirstOrThrow();
    expect(row.next_sync_at).toBeNull();
    const events = await t.database.db
      .selectFrom('webhook_events')
      .select('type')
      .where('type', '=', 'calendar.reauth_required')
      .execute();
    expect(events).toHaveLength(1);
  });

  it('syncs two ways with a given oauth_token: bookings go out tagged, events come in and block', async () => {
    const resourceId = await newResource();
    const calendar = await emulator.control.createCalendar({ summary: 'Given token' });
    const tokens = await emulator.control.mintTokens();
    const connected = await t.request('POST', '/calendars/google/connect', {
      body: {
        resource_id: resourceId,
        calendar_id: calendar.id,
        oauth_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: new Date(Date.now() + tokens.expires_in * 1000).toISOString(),
        sync: { frequency_minutes: 0, conflict_policy: 'provider_wins' },
      },
    });
    expect(connected.statusCode, connected.body).toBe(201);
    const connectionId = connected.json().connection_id as string;
    const booking = await t.request('POST', '/bookings', {
      body: {
        resource_ids: [resourceId],
        start_time: '2026-05-20T08:00:00Z',
        end_time: '2026-05-20T09:00:00Z',
        title: 'Intro call',
      },
    });
    const bookingId = booking.json().booking_id as string;
    await emulator.control.insertEvent(calendar.id, {
      summary: 'Lunch',
      start: { dateTime: '2026-05-20T11:00:00Z' },
      end: { dateTime: '2026-05-20T12:00:00Z' },
    });
    const first = await sync(connectionId);
    expect(first.json()).toMatchObject({
      message: 'Google Calendar synchronized successfully.',
      stats: { pushed: 1, conflicts: 0 },
    });
    const stored = (await emulator.control.storedEvents(calendar.id)).filter((event) => !event.deleted);
    const ours = stored.find((event) => event.extendedProperties?.private?.schedBookingId === bookingId);
    expect(ours).toBeDefined();
    expect(stored).toHaveLength(2);

    const slots = await t.request('GET', '/availability', {
      query: {
        resource_ids: resourceId,
        start: '2026-05-20T10:00:00Z',
        end: '2026-05-20T13:00:00Z',
        duration_minutes: '60',
      },
    });
    expect(slots.json().slots.map((slot: { start_time: string }) => slot.start_time)).toEqual([
      '2026-05-20T10:00:00Z',
      '2026-05-20T12:00:00Z',
    ]);

    // Moved in Google Calendar: provider_wins moves the booking.
    await emulator.control.patchEvent(calendar.id, ours!.id, {
      start: { dateTime: '2026-05-20T14:00:00Z' },
      end: { dateTime: '2026-05-20T15:00:00Z' },
    });
    expect((await sync(connectionId)).statusCode).toBe(200);
    expect((await t.request('GET', `/bookings/${bookingId}`)).json().start_time).toBe('2026-05-20T14:00:00Z');
    const again = await sync(connectionId);
    expect(again.json().stats).toMatchObject({ pushed: 0, conflicts: 0 });
  });

  it('push: a change in Google reaches availability through the notification, without a manual sync', async () => {
    const resourceId = await newResource();
    const calendar = await emulator.control.createCalendar({ summary: 'Push' });
    const { authorizationUrl, connectionId } = await connectThroughConsent(resourceId, calendar.id, {
      realtime: true,
    });
    await consent(authorizationUrl);
    expect((await sync(connectionId)).statusCode).toBe(200);
    const channels = (await emulator.control.channels()).filter(
      (channel) => channel.calendarId === calendar.id,
    );
    expect(channels.filter((channel) => !channel.stopped)).toHaveLength(1);
    expect(channels[0]!.address).toBe(`${t.publicUrl}/hooks/google`);

    const worker = new CalendarSyncWorker({
      database: t.database,
      deps: t.calendarDeps,
      scanIntervalMs: 60_000,
      pollingIntervalSeconds: 0.5,
    });
    await worker.start();
    try {
      await emulator.control.insertEvent(calendar.id, {
        summary: 'Booked elsewhere',
        start: { dateTime: '2026-05-21T09:00:00Z' },
        end: { dateTime: '2026-05-21T10:00:00Z' },
      });
      const query = {
        resource_ids: resourceId,
        start: '2026-05-21T09:00:00Z',
        end: '2026-05-21T10:00:00Z',
        duration_minutes: '60',
      };
      await waitFor('the event to block availability', async () => {
        const slots = await t.request('GET', '/availability', { query });
        return slots.json().slots.length === 0;
      });
    } finally {
      await worker.stop();
    }

    // A notification with the wrong token is ignored.
    const forged = await fetch(`${t.publicUrl}/hooks/google`, {
      method: 'POST',
      headers: {
        'x-goog-channel-id': channels[0]!.id,
        'x-goog-channel-token': 'not-the-token',
        'x-goog-resource-id': channels[0]!.resourceId,
        'x-goog-resource-state': 'exists',
      },
    });
    expect(forged.status).toBe(200);

    const removed = await t.request('DELETE', `/calendars/google/${connectionId}`);
    expect(removed.json()).toEqual({ message: 'Google Calendar disconnected successfully.' });
    const after = (await emulator.control.channels()).filter((channel) => channel.calendarId === calendar.id);
    expect(after.every((channel) => channel.stopped)).toBe(true);
  });
});

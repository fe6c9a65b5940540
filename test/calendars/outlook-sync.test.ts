import { graphSettings } from '../emulators/environment.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CalendarSyncWorker } from '../../src/calendar/worker.js';
import { startGraphEmulator, type GraphEmulator } from '../emulators/graph/graph-emulator.js';
import { graphCaller, utc } from '../emulators/graph/graph-test-client.js';
import { backends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { waitFor } from '../support/wait-for.js';
import { consent as consentAt } from '../support/oauth-consent.js';
import { storedCredentials } from '../support/credentials.js';
import { freePort, startTestApp, type TestApp } from '../support/test-app.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');

// Graph's delta covers a window around the real present, so these tests live there too: midnight UTC
// a week from now, and whole hours after it.
const DAY = Math.floor(Date.now() / 86_400_000 + 7) * 86_400_000;
const at = (hours: number) => new Date(DAY + hours * 3_600_000).toISOString().replace('.000Z', 'Z');

describe('Outlook Calendar through the API, against the Graph emulator', () => {
  let emulator: GraphEmulator;
  let t: TestApp;
  let counter = 0;
  const graph = graphCaller(() => emulator);

  beforeAll(async () => {
    emulator = await startGraphEmulator();
    t = await startTestApp(pglite, new Date().toISOString(), {
      outlook: graphSettings(emulator),
      listenPort: await freePort(),
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await emulator?.stop();
  });

  const newResource = () =>
    createOpenResource(t, { name: `Room ${++counter}`, kind: 'room', time_zone: 'Europe/London' });

  const consent = (authorizationUrl: string) => consentAt(t, 'outlook', authorizationUrl);

  async function connect(resourceId: string, calendarId: string, sync: Record<string, unknown> = {}) {
    const started = await t.request('POST', '/calendars/outlook/connect', {
      body: { resource_id: resourceId, calendar_id: calendarId, sync: { frequency_minutes: 0, ...sync } },
    });
    expect(started.statusCode, started.body).toBe(200);
    const { authorization_url, connection_id } = started.json();
    const callback = await consent(authorization_url as string);
    expect(callback.json()).toMatchObject({ message: 'Outlook Calendar connected successfully.' });
    return connection_id as string;
  }

  const credentialsOf = (connectionId: string) => storedCredentials(t, connectionId);

  const sync = (connectionId: string) => t.request('POST', `/calendars/outlook/${connectionId}/sync`);

  it('connects through consent, refreshes with a rotated refresh token, and stops at a revoked one', async () => {
    const resourceId = await newResource();
    const calendar = emulator.control.createCalendar('Tokens');
    const connectionId = await connect(resourceId, calendar.id);
    expect((await sync(connectionId)).statusCode).toBe(200);
    const before = await credentialsOf(connectionId);
    emulator.control.expireAccessTokens();
    expect((await sync(connectionId)).statusCode).toBe(200);
    const after = await credentialsOf(connectionId);
    expect(after.access_token).not.toBe(before.access_token);
    // Microsoft rotates refresh tokens on every use: the new one is what we keep.
    expect(after.refresh_token).not.toBe(before.refresh_token);

    emulator.control.revokeRefreshTokens();
    emulator.control.expireAccessTokens();
    const refused = await sync(connectionId);
    expect(refused.json()).toMatchObject({ status: 502, code: 'PROVIDER_AUTH_FAILED' });
    expect((await t.request('GET', `/calendars/outlook/${connectionId}`)).json().status).toBe(
      'reauth_required',
    );
  });

  it('a denied consent is refused and the connection stays pending', async () => {
    const resourceId = await newResource();
    const calendar = emulator.control.createCalendar('Denied');
    emulator.control.denyNextAuthorization();
    const started = await t.request('POST', '/calendars/outlook/connect', {
      body: { resource_id: resourceId, calendar_id: calendar.id },
    });
    const denied = await consent(started.json().authorization_url as string);
    expect(denied.json()).toMatchObject({ status: 400, code: 'OAUTH_DENIED' });
    expect(denied.json().detail).toMatch(/access_denied/);
  });

  it('syncs two ways: the booking goes out once, an Outlook event blocks, a move there moves the booking', async () => {
    const resourceId = await newResource();
    const calendar = emulator.control.createCalendar('Two way');
    const connectionId = await connect(resourceId, calendar.id, { conflict_policy: 'provider_wins' });
    const booking = await t.request('POST', '/bookings', {
      body: {
        resource_ids: [resourceId],
        start_time: at(8),
        end_time: at(9),
        title: 'Board meeting',
      },
    });
    const bookingId = booking.json().booking_id as string;
    emulator.control.putEvent(calendar.id, {
      subject: 'Cleaning',
      start: utc(at(11)),
      end: utc(at(12)),
    });
    const first = await sync(connectionId);
    expect(first.json()).toMatchObject({
      message: 'Outlook Calendar synchronized successfully.',
      stats: { pushed: 1, conflicts: 0 },
    });
    const listed = await graph('GET', `me/calendars/${calendar.id}/events`);
    const events = listed.json.value as { id: string; subject: string }[];
    expect(events.map((event) => event.subject).sort()).toEqual(['Board meeting', 'Cleaning']);

    const busy = await t.request('POST', '/freebusy', {
      body: { resource_ids: [resourceId], start: at(0), end: at(24) },
    });
    expect(busy.json().resources[resourceId].busy).toEqual([
      { start_time: at(8), end_time: at(9), source: 'booking' },
      { start_time: at(11), end_time: at(12), source: 'calendar' },
    ]);

    const ours = events.find((event) => event.subject === 'Board meeting')!;
    const moved = await graph('PATCH', `me/events/${ours.id}`, {
      start: utc(at(15)),
      end: utc(at(16)),
    });
    expect(moved.status).toBe(200);
    expect((await sync(connectionId)).statusCode).toBe(200);
    expect((await t.request('GET', `/bookings/${bookingId}`)).json().start_time).toBe(at(15));
    expect((await sync(connectionId)).json().stats).toMatchObject({ pushed: 0, conflicts: 0 });
  });

  it('a 410 on the second page of the first delta round restarts the round: everything stored once', async () => {
    const resourceId = await newResource();
    // Delta is documented for the primary calendar only; the other tests use calendars of their own.
    const connectionId = await connect(resourceId, 'primary');
    const subjects = ['Primary one', 'Primary two', 'Primary three'];
    subjects.forEach((subject, i) =>
      emulator.control.putEvent('primary', { subject, start: utc(at(30 + i)), end: utc(at(30.5 + i)) }),
    );
    // An empty first page with a nextLink, so the round's second page is a $skiptoken continuation.
    emulator.control.configureDelta({ emptyFirstPage: true });
    emulator.control.addFault({ kind: 410, delta: 'skiptoken', nth: 1 });
    const before = emulator.control.requests().length;
    try {
      const synced = await sync(connectionId);
      expect(synced.statusCode, synced.body).toBe(200);
    } finally {
      emulator.control.clearFaults();
      emulator.control.configureDelta({ emptyFirstPage: false });
    }
    const deltaCalls = emulator.control
      .requests()
      .slice(before)
      .filter((r) => r.path.endsWith('/calendarView/delta'));
    expect(deltaCalls.map((r) => r.status)).toEqual([200, 410, 200, 200]);
    // The restart followed the 410's Location: an empty $deltatoken and the round's window.
    expect(deltaCalls[2]!.query).toMatch(/(\$|%24)deltatoken=&startDateTime=/);

    const stored = await t.request('GET', `/calendars/outlook/${connectionId}/events`, {
      query: { start: at(0), end: at(48) },
    });
    expect(stored.statusCode, stored.body).toBe(200);
    const titles = (stored.json().events as { title: string }[]).map((e) => e.title).sort();
    expect(titles).toEqual([...subjects].sort());
    // A second sync is incremental and finds nothing new.
    expect((await sync(connectionId)).statusCode).toBe(200);
    const again = await t.request('GET', `/calendars/outlook/${connectionId}/events`, {
      query: { start: at(0), end: at(48) },
    });
    expect((again.json().events as unknown[]).length).toBe(subjects.length);
  });

  it('push: a change in Outlook reaches availability through the subscription, without a manual sync', async () => {
    const resourceId = await newResource();
    const calendar = emulator.control.createCalendar('Push');
    const connectionId = await connect(resourceId, calendar.id, { realtime: true });
    expect((await sync(connectionId)).statusCode).toBe(200);
    const subscriptions = emulator.control.subscriptions();
    const subscription = subscriptions.find(
      (candidate) => candidate.notificationUrl === `${t.publicUrl}/hooks/outlook`,
    );
    expect(subscription).toBeDefined();

    const worker = new CalendarSyncWorker({
      database: t.database,
      deps: t.calendarDeps,
      scanIntervalMs: 60_000,
      pollingIntervalSeconds: 0.5,
    });
    await worker.start();
    try {
      emulator.control.putEvent(calendar.id, {
        subject: 'Booked elsewhere',
        start: utc(at(57)),
        end: utc(at(58)),
      });
      const query = {
        resource_ids: resourceId,
        start: at(57),
        end: at(58),
        duration_minutes: '60',
      };
      await waitFor('the event to block availability', async () => {
        const slots = await t.request('GET', '/availability', { query });
        return slots.json().slots.length === 0;
      });

      // Graph removed the subscription: the lifecycle notification makes the next sync recreate it.
      const old = subscription!.id;
      await emulator.control.sendLifecycle(old, 'subscriptionRemoved');
      emulator.control.removeSubscription(old);
      await waitFor('a new subscription', async () =>
        emulator.control
          .subscriptions()
          .some(
            (candidate) =>
              candidate.id !== old && candidate.notificationUrl === `${t.publicUrl}/hooks/outlook`,
          ),
      );
    } finally {
      await worker.stop();
    }

    const validation = await fetch(
      `${t.publicUrl}/hooks/outlook?validationToken=${encodeURIComponent('a b&c')}`,
      {
        method: 'POST',
      },
    );
    expect(await validation.text()).toBe('a b&c');
    expect(validation.headers.get('content-type')).toMatch(/^text\/plain/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CalDavProvider } from '../../src/calendar/providers/caldav/caldav-provider.js';
import { createConnectors } from '../../src/calendar/providers/connectors.js';
import type { CalendarDeps } from '../../src/calendar/store/connections.js';
import { syncConnection } from '../../src/calendar/engine/sync.js';
import { backends } from '../support/backends.js';
import { calDavServerSkipReason, startCalDavServer, type CalDavServer } from '../support/caldav-servers.js';
import { startObservedWorker } from '../support/observed-worker.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { connectionRow } from '../support/connection-row.js';
import { createOpenResource } from '../support/resources.js';
import { waitFor } from '../support/wait-for.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');
const skip = calDavServerSkipReason('radicale');

describe.skipIf(skip)(`sync through provider faults (Radicale)${skip ? ` — SKIPPED: ${skip}` : ''}`, () => {
  let server: CalDavServer;
  let proxy: FaultProxy;
  let t: TestApp;
  let deps: CalendarDeps;
  let counter = 0;

  beforeAll(async () => {
    server = await startCalDavServer('radicale');
    proxy = await startFaultProxy(server.rootUrl);
    t = await startTestApp(pglite, '2026-05-18T06:00:00Z');
    // Short request timeouts, so a hanging server costs the test a second, not fifteen.
    deps = { ...t.calendarDeps, connectors: createConnectors(t.http, { timeoutMs: 1000 }) };
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await server?.stop();
  });

  async function connectThroughProxy() {
    counter++;
    const calendarUrl = await server.newCalendar(`faults-${counter}`);
    const resourceId = await createOpenResource(t, {
      name: `Room ${counter}`,
      kind: 'room',
      time_zone: 'Europe/Berlin',
    });
    const proxied = new URL(new URL(calendarUrl).pathname, proxy.url).toString();
    const connected = await t.request('POST', '/calendars/caldav/connect', {
      body: {
        resource_id: resourceId,
        url: proxied,
        username: server.username,
        password: server.password,
        sync: { frequency_minutes: 15 },
      },
    });
    expect(connected.statusCode, connected.body).toBe(201);
    // Read behind the proxy's back: what the server really holds.
    const direct = new CalDavProvider({
      http: t.http,
      collectionUrl: calendarUrl,
      username: server.username,
      password: server.password,
    });
    return { resourceId, calendarUrl, connectionId: connected.json().connection_id as string, direct };
  }

  async function book(resourceId: string, day: number) {
    const start = `2026-06-${String(day).padStart(2, '0')}T08:00:00Z`;
    const end = `2026-06-${String(day).padStart(2, '0')}T09:00:00Z`;
    const response = await t.request('POST', '/bookings', {
      body: { resource_ids: [resourceId], start_time: start, end_time: end, title: `Booking ${day}` },
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json().booking_id as string;
  }

  it('5xx, timeouts and lost answers for a while, then recovery: nothing lost, nothing written twice', async () => {
    const { resourceId, calendarUrl, connectionId, direct } = await connectThroughProxy();
    await t.request('POST', '/webhooks', {
      body: { url: 'https://hooks.example.invalid/sched', events: ['calendar.sync_failed'] },
    });
    const bookings = [];
    for (let day = 1; day <= 6; day++) bookings.push(await book(resourceId, day));

    proxy.mode = 'error';
    await expect(syncConnection(deps, connectionId)).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    let row = await connectionRow(t, connectionId);
    expect(row).toMatchObject({ status: 'error', failure_count: 1 });
    expect(row.last_error).toMatch(/503/);
    expect(row.next_sync_at!.getTime()).toBeGreaterThan(t.clock.now);
    const shown = await t.request('GET', `/calendars/caldav/${connectionId}`);
    expect(shown.json()).toMatchObject({ status: 'error', last_error: row.last_error });

    // Someone adds an event in their calendar app during the outage.
    const external = [
      'BEGIN:VCALENDAR',
      'VERSION:2.0',
      'PRODID:-//Example//App//EN',
      'BEGIN:VEVENT',
      'UID:made-during-outage',
      'DTSTAMP:20260501T000000Z',
      'DTSTART:20260610T120000Z',
      'DTEND:20260610T130000Z',
      'SUMMARY:Made during the outage',
      'END:VEVENT',
      'END:VCALENDAR',
      '',
    ].join('\r\n');
    const put = await server.request('PUT', `${calendarUrl}outage.ics`, {
      body: external,
      headers: { 'content-type': 'text/calendar; charset=utf-8' },
    });
    expect(put.status).toBe(201);

    proxy.mode = 'hang';
    await expect(syncConnection(deps, connectionId)).rejects.toMatchObject({ code: 'PROVIDER_TIMEOUT' });
    expect((await connectionRow(t, connectionId)).failure_count).toBe(2);

    // The server performs the first write, but its answer never arrives.
    proxy.mode = 'lose-answer';
    await expect(syncConnection(deps, connectionId)).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    expect((await direct.listChanges(null, new Map())).changed.length).toBeGreaterThanOrEqual(2);

    // Meanwhile in Sched: one more booking, one cancelled.
    bookings.push(await book(resourceId, 7));
    await t.request('POST', `/bookings/${bookings[0]}/cancel`, { body: {} });

    proxy.mode = 'pass';
    const stats = await syncConnection(deps, connectionId);
    expect(stats.conflicts).toBe(0);
    row = await connectionRow(t, connectionId);
    expect(row).toMatchObject({ status: 'active', failure_count: 0, last_error: null });

    const objects = (await direct.listChanges(null, new Map())).changed;
    const uids = objects.map((object) => /^UID:(.*)$/m.exec(object.ics)?.[1]?.trim());
    const expected = [...bookings.slice(1).map((id) => `${id}@sched`), 'made-during-outage'];
    expect(uids.sort()).toEqual(expected.sort());

    const events = await t.request('GET', `/calendars/caldav/${connectionId}/events`, {
      query: { start: '2026-06-10T00:00:00Z', end: '2026-06-11T00:00:00Z' },
    });
    expect(events.json().events.map((event: { title: string }) => event.title)).toContain(
      'Made during the outage',
    );
    const again = await syncConnection(deps, connectionId);
    expect(again).toMatchObject({ pushed: 0, created: 0, deleted: 0 });

    const failures = await t.database.db
      .selectFrom('webhook_events')
      .select('type')
      .where('type', '=', 'calendar.sync_failed')
      .execute();
    // Once on the way into the failing state, not once per retry.
    expect(failures).toHaveLength(1);
  });

  it('the worker retries a failing connection only after its backoff, then catches up by itself', async () => {
    const { resourceId, connectionId, direct } = await connectThroughProxy();
    proxy.mode = 'error';
    const { worker, nextScans } = await startObservedWorker({
      database: t.database,
      deps,
      scanIntervalMs: 100,
      pollingIntervalSeconds: 0.5,
    });
    try {
      const bookingId = await book(resourceId, 15);
      await waitFor(
        'the first failed attempt',
        async () => (await connectionRow(t, connectionId)).failure_count >= 1,
      );
      const seenAfterFailure = { ...proxy.seen };
      const row = await connectionRow(t, connectionId);
      // The clock stands still, so the backoff never runs out: three whole scans after the failure
      // queue nothing and send nothing.
      expect(await nextScans(3)).not.toContain(connectionId);
      expect(proxy.seen).toEqual(seenAfterFailure);
      expect((await connectionRow(t, connectionId)).failure_count).toBe(row.failure_count);

      proxy.mode = 'pass';
      t.clock.set(new Date(row.next_sync_at!.getTime() + 1000).toISOString());
      await waitFor('recovery', async () => (await connectionRow(t, connectionId)).status === 'active');
      const objects = (await direct.listChanges(null, new Map())).changed;
      expect(objects.filter((object) => object.ics.includes(bookingId))).toHaveLength(1);
    } finally {
      await worker.stop();
      t.clock.set('2026-05-18T06:00:00Z');
    }
  });
});

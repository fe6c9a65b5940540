import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STOP_AFTER_FAILURES } from '../../src/calendar/policy/failure-policy.js';
import { backends } from '../support/backends.js';
import { calDavServerSkipReason, startCalDavServer, type CalDavServer } from '../support/caldav-servers.js';
import { connectionRow } from '../support/connection-row.js';
import { createOpenResource } from '../support/resources.js';
import { startObservedWorker } from '../support/observed-worker.js';
import { waitFor } from '../support/wait-for.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');
const skip = calDavServerSkipReason('radicale');

describe.skipIf(skip)(
  `a calendar deleted at the provider (Radicale)${skip ? ` — SKIPPED: ${skip}` : ''}`,
  () => {
    let server: CalDavServer;
    let t: TestApp;

    beforeAll(async () => {
      server = await startCalDavServer('radicale');
      t = await startTestApp(pglite, '2026-05-18T06:00:00Z');
    }, 120_000);
    afterAll(async () => {
      await t?.close();
      await server?.stop();
    });

    it('is retried a few times, then stops with a clear error until someone syncs it by hand', async () => {
      const calendarUrl = await server.newCalendar('soon-gone');
      const resourceId = await createOpenResource(t, {
        name: 'Room',
        kind: 'room',
        time_zone: 'Europe/Berlin',
      });
      await t.request('POST', '/webhooks', {
        body: { url: 'https://hooks.example.invalid/sched', events: ['calendar.sync_failed'] },
      });
      const connected = await t.request('POST', '/calendars/caldav/connect', {
        body: {
          resource_id: resourceId,
          url: calendarUrl,
          username: server.username,
          password: server.password,
          sync: { frequency_minutes: 15 },
        },
      });
      expect(connected.statusCode, connected.body).toBe(201);
      const connectionId = connected.json().connection_id as string;
      const synced = await t.request('POST', `/calendars/caldav/${connectionId}/sync`, { body: {} });
      expect(synced.statusCode, synced.body).toBe(200);

      const deleted = await server.request('DELETE', calendarUrl);
      expect(deleted.status).toBeLessThan(300);

      const { worker, nextScans } = await startObservedWorker({
        database: t.database,
        deps: t.calendarDeps,
        scanIntervalMs: 100,
        pollingIntervalSeconds: 0.5,
      });
      try {
        // The worker makes every attempt; the clock is moved to each retry time as it comes.
        t.clock.advance(16 * 60_000);
        for (let failures = 1; failures <= STOP_AFTER_FAILURES; failures++) {
          await waitFor(
            `failed sync ${failures}`,
            async () => (await connectionRow(t, connectionId)).failure_count >= failures,
          );
          const row = await connectionRow(t, connectionId);
          expect(row.failure_count).toBe(failures);
          expect(row.status).toBe('error');
          if (failures < STOP_AFTER_FAILURES) {
            expect(row.last_error).not.toMatch(/no longer exists/);
            expect(row.next_sync_at).not.toBeNull();
            t.clock.set(new Date(row.next_sync_at!.getTime() + 1000).toISOString());
          }
        }
        const stopped = await connectionRow(t, connectionId);
        expect(stopped.next_sync_at).toBeNull();
        expect(stopped.last_error).toMatch(/no longer exists/);
        expect(stopped.last_error).toMatch(/reconnect/);
        const shown = await t.request('GET', `/calendars/caldav/${connectionId}`);
        expect(shown.json()).toMatchObject({ status: 'error', last_error: stopped.last_error });

        // A day later, three whole scans leave it alone.
        t.clock.advance(24 * 3600_000);
        expect(await nextScans(3)).not.toContain(connectionId);
        expect((await connectionRow(t, connectionId)).failure_count).toBe(STOP_AFTER_FAILURES);

        const failedEvents = await t.database.db
          .selectFrom('webhook_events')
          .select(['type', 'payload'])
          .where('type', '=', 'calendar.sync_failed')
          .execute();
        expect(failedEvents).toHaveLength(1);
        expect(JSON.stringify(failedEvents[0]!.payload)).toMatch(/no longer exists/);
      } finally {
        await worker.stop();
      }

      // A manual sync still tries, and says the same clearly.
      const manual = await t.request('POST', `/calendars/caldav/${connectionId}/sync`, { body: {} });
      expect(manual.statusCode).toBe(502);
      expect(manual.json()).toMatchObject({ code: 'PROVIDER_NOT_FOUND' });
      expect(manual.json().detail ?? manual.json().message ?? manual.body).toMatch(/no longer exists/);
      expect((await connectionRow(t, connectionId)).failure_count).toBe(STOP_AFTER_FAILURES + 1);

      // The calendar is back (made again at the same address): a manual sync clears the failure.
      await server.newCalendar('soon-gone');
      const recovered = await t.request('POST', `/calendars/caldav/${connectionId}/sync`, { body: {} });
      expect(recovered.statusCode, recovered.body).toBe(200);
      expect(await connectionRow(t, connectionId)).toMatchObject({
        status: 'active',
        failure_count: 0,
        last_error: null,
      });
      expect((await connectionRow(t, connectionId)).next_sync_at).not.toBeNull();
    });
  },
);

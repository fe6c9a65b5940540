import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CalendarSyncWorker } from '../../src/calendar/worker.js';
import { CalDavProvider } from '../../src/calendar/providers/caldav/caldav-provider.js';
import { openDatabase, type DatabaseHandle } from '../../src/storage/open-database.js';
import { backends } from '../support/backends.js';
import { calDavServerSkipReason, startCalDavServer, type CalDavServer } from '../support/caldav-servers.js';
import { databaseUrl } from '../support/postgres.js';
import { createOpenResource } from '../support/resources.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const postgres = backends.find((backend) => backend.name === 'postgres');
if (!postgres) throw new Error('no PostgreSQL backend');
const skip = postgres.skipReason ?? calDavServerSkipReason('radicale');

const CALENDARS = 3;
const BOOKINGS_PER_CALENDAR = 12;

describe.skipIf(skip)(
  `several sync workers on one PostgreSQL database (Radicale)${skip ? ` — SKIPPED: ${skip}` : ''}`,
  () => {
    let server: CalDavServer;
    let t: TestApp;
    const handles: DatabaseHandle[] = [];
    const workers: CalendarSyncWorker[] = [];

    beforeAll(async () => {
      server = await startCalDavServer('radicale');
      t = await startTestApp(postgres, '2026-05-18T06:00:00Z');
    }, 120_000);
    afterAll(async () => {
      for (const worker of workers) await worker.stop();
      for (const handle of handles) await handle.close();
      await t?.close();
      await server?.stop();
    });

    it('every booking reaches its calendar exactly once while two workers share the queue', async () => {
      const { rows } = await sql<{ name: string }>`select current_database() as name`.execute(t.database.db);
      const name = rows[0]!.name;
      // Two more connections pools to the same database: what two worker processes would hold.
      for (let index = 0; index < 2; index++) {
        const handle = await openDatabase({ kind: 'postgres', url: databaseUrl(name), poolSize: 4 });
        handles.push(handle);
        const worker = new CalendarSyncWorker({
          database: handle,
          deps: { ...t.calendarDeps, db: handle.db },
          scanIntervalMs: 200,
          pollingIntervalSeconds: 0.5,
          concurrency: 2,
        });
        workers.push(worker);
      }
      // pg-boss creates its schema once; starting both at once must not trip over each other.
      await Promise.all(workers.map((worker) => worker.start()));

      const calendars: { resourceId: string; calendarUrl: string }[] = [];
      for (let index = 0; index < CALENDARS; index++) {
        const calendarUrl = await server.newCalendar(`workers-${index}`);
        const resourceId = await createOpenResource(t, {
          name: `Desk ${index}`,
          kind: 'equipment',
          time_zone: 'UTC',
        });
        const connected = await t.request('POST', '/calendars/caldav/connect', {
          body: {
            resource_id: resourceId,
            url: calendarUrl,
            username: server.username,
            password: server.password,
            sync: { frequency_minutes: 0 },
          },
        });
        expect(connected.statusCode, connected.body).toBe(201);
        calendars.push({ resourceId, calendarUrl });
      }
      const booked = new Map<string, string[]>();
      await Promise.all(
        calendars.map(async ({ resourceId }) => {
          const ids: string[] = [];
          for (let n = 0; n < BOOKINGS_PER_CALENDAR; n++) {
            const start = Date.parse('2026-06-01T00:00:00Z') + n * 3_600_000;
            const response = await t.request('POST', '/bookings', {
              body: {
                resource_ids: [resourceId],
                start_time: new Date(start).toISOString(),
                end_time: new Date(start + 1_800_000).toISOString(),
                title: `Slot ${n}`,
              },
            });
            expect(response.statusCode, response.body).toBe(201);
            ids.push(response.json().booking_id as string);
          }
          booked.set(resourceId, ids);
        }),
      );

      const started = Date.now();
      for (;;) {
        const pending = await t.database.db
          .selectFrom('booking_calendar_links')
          .select((eb) => eb.fn.countAll<number>().as('count'))
          .where('push_pending', '=', true)
          .executeTakeFirstOrThrow();
        if (Number(pending.count) === 0) break;
        if (Date.now() - started > 30_000) throw new Error(`${pending.count} bookings still pending`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }

      for (const { resourceId, calendarUrl } of calendars) {
        const direct = new CalDavProvider({
          http: t.http,
          collectionUrl: calendarUrl,
          username: server.username,
          password: server.password,
        });
        const objects = (await direct.listChanges(null, new Map())).changed;
        const uids = objects.map((object) => /^UID:(.*)$/m.exec(object.ics)?.[1]?.trim()).sort();
        expect(uids).toEqual((booked.get(resourceId) ?? []).map((id) => `${id}@sched`).sort());
      }
      const failing = await t.database.db
        .selectFrom('calendar_connections')
        .select(['status', 'last_error'])
        .where('failure_count', '>', 0)
        .execute();
      expect(failing).toEqual([]);
    });
  },
);

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CalDavProvider } from '../../src/calendar/providers/caldav/caldav-provider.js';
import { GuardedHttp } from '../../src/integrations/http/guarded-http.js';
import { OutboundGuard } from '../../src/integrations/http/outbound-guard.js';
import { backends } from '../support/backends.js';
import { calDavServerSkipReason, startCalDavServer, type CalDavServer } from '../support/caldav-servers.js';
import { roundTheClockWeekly } from '../support/schedules.js';
import {
  cloneTemplateDatabase,
  randomApiKey,
  spawnServer,
  stopAll,
  type ClonedDatabase,
  type SpawnedServer,
} from '../support/spawn-server.js';
import { waitFor } from '../support/wait-for.js';

const postgres = backends.find((backend) => backend.name === 'postgres');
const skip = postgres?.skipReason ?? calDavServerSkipReason('radicale');
const CALENDARS = 2;
const BOOKINGS_PER_CALENDAR = 15;

describe.skipIf(skip)(
  `two sched serve processes on one PostgreSQL database sync to Radicale${skip ? ` — SKIPPED: ${skip}` : ''}`,
  () => {
    let database: ClonedDatabase;
    let server: CalDavServer;
    const processes: SpawnedServer[] = [];
    const http = new GuardedHttp(new OutboundGuard({ allow: ['127.0.0.1/32'] }));
    const key = randomApiKey();

    beforeAll(async () => {
      database = await cloneTemplateDatabase('calproc');
      server = await startCalDavServer('radicale');
      const env = {
        DATABASE_URL: database.url,
        SCHED_BOOTSTRAP_API_KEY: key,
        SCHED_OUTBOUND_ALLOW: '127.0.0.1/32',
      };
      processes.push(...(await Promise.all([spawnServer(env), spawnServer(env)])));
    }, 120_000);
    afterAll(async () => {
      await stopAll(processes);
      await server?.stop();
      await database?.drop();
      await http.close();
    });

    async function call(via: SpawnedServer, method: string, path: string, body?: unknown) {
      const response = await fetch(`${via.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return {
        status: response.status,
        body: (await response.json().catch(() => null)) as Record<string, any>,
      };
    }

    it('bookings made through either process reach their calendar exactly once', async () => {
      const [a, b] = processes as [SpawnedServer, SpawnedServer];
      const calendars: { resourceId: string; calendarUrl: string; bookingIds: string[] }[] = [];
      for (let index = 0; index < CALENDARS; index++) {
        const calendarUrl = await server.newCalendar(`processes-${index}`);
        const resource = await call(a, 'POST', '/resources', {
          name: `Studio ${index}`,
          kind: 'room',
          time_zone: 'UTC',
        });
        const resourceId = resource.body.resource_id as string;
        await call(a, 'PUT', `/resources/${resourceId}/schedule`, { weekly: roundTheClockWeekly() });
        const connected = await call(b, 'POST', '/calendars/caldav/connect', {
          resource_id: resourceId,
          url: calendarUrl,
          username: server.username,
          password: server.password,
          sync: { frequency_minutes: 0 },
        });
        expect(connected.status, JSON.stringify(connected.body)).toBe(201);
        calendars.push({ resourceId, calendarUrl, bookingIds: [] });
      }
      const start = Date.now() + 7 * 86_400_000;
      await Promise.all(
        calendars.map(async (calendar) => {
          for (let n = 0; n < BOOKINGS_PER_CALENDAR; n++) {
            const at = start + n * 3_600_000;
            const response = await call(n % 2 === 0 ? a : b, 'POST', '/bookings', {
              resource_ids: [calendar.resourceId],
              start_time: new Date(at).toISOString(),
              end_time: new Date(at + 1_800_000).toISOString(),
              title: `Session ${n}`,
            });
            expect(response.status, JSON.stringify(response.body)).toBe(201);
            calendar.bookingIds.push(response.body.booking_id as string);
          }
        }),
      );

      const client = await database.connect();
      try {
        await waitFor(
          'every booking pushed',
          async () => {
            const { rows } = await client.query<{ count: string }>(
              'select count(*) from booking_calendar_links where push_pending',
            );
            return Number(rows[0]!.count) === 0;
          },
          30_000,
        );
      } finally {
        await client.end();
      }
      for (const calendar of calendars) {
        const provider = new CalDavProvider({
          http,
          collectionUrl: calendar.calendarUrl,
          username: server.username,
          password: server.password,
        });
        const objects = (await provider.listChanges(null, new Map())).changed;
        const uids = objects.map((object) => /^UID:(.*)$/m.exec(object.ics)?.[1]?.trim()).sort();
        expect(uids).toEqual(calendar.bookingIds.map((id) => `${id}@sched`).sort());
      }
    }, 90_000);
  },
);

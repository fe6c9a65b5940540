import { googleSettings } from '../emulators/environment.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncConnection } from '../../src/calendar/engine/sync.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/emulator.js';
import { backends } from '../support/backends.js';
import { connectionRow } from '../support/connection-row.js';
import { createOpenResource } from '../support/resources.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/*
 * A first sync stores each page of the listing as it comes: a listing that fails midway leaves what
 * it stored but no cursor, and the next sync lists everything again and ends with exactly what the
 * calendar holds.
 */

const DAY = 86_400_000;
const SINGLES = 24;
const PAGE = 5;

for (const backend of backends) {
  describe.skipIf(backend.skipReason)(
    `a first sync stored page by page (${backend.name})${backend.skipReason ? ` — SKIPPED: ${backend.skipReason}` : ''}`,
    () => {
      let emulator: GoogleEmulator;
      let t: TestApp;

      beforeAll(async () => {
        emulator = await startGoogleEmulator();
        t = await startTestApp(backend, '2026-05-18T06:00:00Z', { google: googleSettings(emulator) });
      }, 60_000);
      afterAll(async () => {
        await t?.close();
        await emulator?.stop();
      });

      async function stored(connectionId: string) {
        const rows = await t.database.db
          .selectFrom('calendar_events as e')
          .leftJoin('calendar_occurrences as o', 'o.event_id', 'e.event_id')
          .select(['e.remote_id', 'e.title'])
          .select((eb) => eb.fn.count<string>('o.event_id').as('occurrences'))
          .where('e.connection_id', '=', connectionId)
          .groupBy(['e.remote_id', 'e.title'])
          .execute();
        return new Map(rows.map((row) => [row.title ?? '', Number(row.occurrences)]));
      }

      it('a listing cut off midway keeps no cursor; the next sync ends with what the calendar holds', async () => {
        const calendar = await emulator.control.createCalendar({ summary: 'Paged' });
        const start = Date.parse('2026-06-01T08:00:00Z');
        const singles = [];
        for (let i = 0; i < SINGLES; i++) {
          singles.push(
            await emulator.control.insertEvent(calendar.id, {
              summary: `Single ${i}`,
              start: { dateTime: new Date(start + i * DAY).toISOString() },
              end: { dateTime: new Date(start + i * DAY + 3_600_000).toISOString() },
            }),
          );
        }
        // A weekly series with one occurrence moved: its master and exception come on different pages.
        const series = await emulator.control.insertEvent(calendar.id, {
          summary: 'Weekly',
          start: { dateTime: '2026-06-02T14:00:00', timeZone: 'Europe/Berlin' },
          end: { dateTime: '2026-06-02T15:00:00', timeZone: 'Europe/Berlin' },
          recurrence: ['RRULE:FREQ=WEEKLY;COUNT=6'],
        });
        await emulator.control.patchEvent(calendar.id, `${series.id}_20260609T120000Z`, {
          summary: 'Weekly (moved)',
          start: { dateTime: '2026-06-09T17:00:00', timeZone: 'Europe/Berlin' },
          end: { dateTime: '2026-06-09T18:00:00', timeZone: 'Europe/Berlin' },
        });
        await emulator.control.setPaging({ maxPageSize: PAGE });

        const resourceId = await createOpenResource(t, {
          name: `Room ${backend.name}`,
          kind: 'room',
          time_zone: 'Europe/Berlin',
        });
        const connected = await t.request('POST', '/calendars/google/connect', {
          body: {
            resource_id: resourceId,
            calendar_id: calendar.id,
            oauth_token: (await emulator.control.mintTokens()).access_token,
            sync: { frequency_minutes: 0 },
          },
        });
        expect(connected.statusCode, connected.body).toBe(201);
        const connectionId = connected.json().connection_id as string;

        // The fourth page of the listing fails, however often it is asked for.
        await emulator.control.addFault({
          kind: 'insufficientPermissions403',
          listing: 'full',
          after: 3,
          count: 100,
        });
        await expect(syncConnection(t.calendarDeps, connectionId)).rejects.toMatchObject({
          code: 'PROVIDER_FORBIDDEN',
        });
        const cut = await stored(connectionId);
        // The three pages read before the failure are stored; the series waits for the listing's end.
        expect(cut.size).toBe(3 * PAGE);
        expect([...cut.values()].every((occurrences) => occurrences === 1)).toBe(true);
        const failed = await connectionRow(t, connectionId);
        expect(failed.sync_cursor).toBeNull();

        // Meanwhile one of the events already stored is deleted, and one is added.
        await emulator.control.clearFaults();
        const [firstSingle] = singles;
        await emulator.control.deleteEvent(calendar.id, firstSingle!.id);
        await emulator.control.insertEvent(calendar.id, {
          summary: 'Added later',
          start: { dateTime: '2026-07-01T08:00:00Z' },
          end: { dateTime: '2026-07-01T09:00:00Z' },
        });

        const stats = await syncConnection(t.calendarDeps, connectionId);
        expect(stats).toMatchObject({ deleted: 1 });
        const whole = await stored(connectionId);
        const expected = new Map<string, number>([
          ...singles.slice(1).map((event) => [event.summary ?? '', 1] as [string, number]),
          ['Added later', 1],
          // Six weekly occurrences, one of them moved (the override carries its own title).
          ['Weekly', 6],
        ]);
        expect(whole).toEqual(expected);
        const moved = await t.database.db
          .selectFrom('calendar_occurrences')
          .select('title')
          .where('connection_id', '=', connectionId)
          .where('title', '=', 'Weekly (moved)')
          .execute();
        expect(moved).toHaveLength(1);
        const synced = await connectionRow(t, connectionId);
        expect(synced.sync_cursor).not.toBeNull();

        // From its cursor, the next sync finds nothing new.
        const again = await syncConnection(t.calendarDeps, connectionId);
        expect(again).toMatchObject({ created: 0, updated: 0, deleted: 0 });
        expect(await stored(connectionId)).toEqual(expected);
      });
    },
  );
}

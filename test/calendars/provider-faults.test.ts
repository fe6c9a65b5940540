import { googleSettings, graphSettings } from '../emulators/environment.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncConnection } from '../../src/calendar/engine/sync.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/emulator.js';
import { startGraphEmulator, type GraphEmulator } from '../emulators/graph/graph-emulator.js';
import { utc } from '../emulators/graph/graph-test-client.js';
import { backends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { startTestApp, type TestApp, type TestAppOptions } from '../support/test-app.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');

const BOOKINGS = 500;
const EXTERNAL_EVENTS = 25;
/** A sync is tried this often at most; with 20% of calls failing, far fewer are needed. */
const MAX_SYNCS = 400;
// Around the real present, where Graph's delta window is; bookings are half-hour slots from here on.
const BASE = Math.floor(Date.now() / 86_400_000 + 3) * 86_400_000;

/** What the test needs of a provider's emulator: its settings, a token, a calendar, faults, the truth. */
type Driver = {
  name: 'google' | 'outlook';
  settings(): NonNullable<TestAppOptions['google']>;
  token(): Promise<{ access: string; refresh: string | null }>;
  calendar(): Promise<string>;
  /** About 20% of API calls fail: rate limits, 5xx and calls that never answer. */
  failOneInFive(): Promise<void>;
  healthy(): Promise<void>;
  /** An event made by the user at the provider, behind Sched's back. */
  userEvent(calendarId: string, start: number, title: string): Promise<void>;
  /** Booking ids carried by the events the calendar holds, one entry per event. */
  bookingIdsAtProvider(calendarId: string): Promise<string[]>;
  stop(): Promise<void>;
};

async function googleDriver(): Promise<Driver> {
  const emulator: GoogleEmulator = await startGoogleEmulator();
  return {
    name: 'google',
    settings: () => googleSettings(emulator),
    token: async () => {
      const minted = await emulator.control.mintTokens();
      return { access: minted.access_token, refresh: minted.refresh_token ?? null };
    },
    calendar: async () => (await emulator.control.createCalendar({ summary: 'Faults' })).id,
    failOneInFive: async () => {
      await emulator.control.addFault({ kind: 'rateLimit429', probability: 0.05, seed: 11 });
      await emulator.control.addFault({ kind: 'rateLimit403', probability: 0.04, seed: 12 });
      await emulator.control.addFault({ kind: 'backendError500', probability: 0.06, seed: 13 });
      await emulator.control.addFault({ kind: 'hang', probability: 0.06, seed: 14 });
    },
    healthy: () => emulator.control.clearFaults(),
    userEvent: async (calendarId, start, title) => {
      await emulator.control.insertEvent(calendarId, {
        summary: title,
        start: { dateTime: new Date(start).toISOString() },
        end: { dateTime: new Date(start + 1_800_000).toISOString() },
      });
    },
    bookingIdsAtProvider: async (calendarId) =>
      (await emulator.control.storedEvents(calendarId))
        .filter((event) => !event.deleted)
        .flatMap((event) => {
          const id = event.extendedProperties?.private?.schedBookingId;
          return id ? [id] : [];
        }),
    stop: () => emulator.stop(),
  };
}

async function outlookDriver(): Promise<Driver> {
  const emulator: GraphEmulator = await startGraphEmulator();
  return {
    name: 'outlook',
    settings: () => graphSettings(emulator),
    token: () => {
      const minted = emulator.control.mintToken();
      return Promise.resolve({ access: minted.accessToken, refresh: minted.refreshToken });
    },
    calendar: () => Promise.resolve(emulator.control.createCalendar('Faults').id),
    failOneInFive: () => {
      emulator.control.addFault({ kind: 429, rate: 0.05, seed: 21, retryAfter: '0.2' });
      emulator.control.addFault({ kind: 503, rate: 0.05, seed: 22 });
      emulator.control.addFault({ kind: 504, rate: 0.05, seed: 23 });
      emulator.control.addFault({ kind: 'hang', rate: 0.06, seed: 24 });
      return Promise.resolve();
    },
    healthy: () => {
      emulator.control.clearFaults();
      return Promise.resolve();
    },
    userEvent: (calendarId, start, title) => {
      emulator.control.putEvent(calendarId, {
        subject: title,
        start: utc(start),
        end: utc(start + 1_800_000),
      });
      return Promise.resolve();
    },
    bookingIdsAtProvider: (calendarId) =>
      Promise.resolve(
        [...emulator.control.state.mailbox.events.values()]
          .filter((event) => event.calendarId === calendarId)
          .flatMap((event) => {
            const tagged = event.extended.find((property) => property.id.endsWith('schedBookingId'));
            return tagged ? [tagged.value] : [];
          }),
      ),
    stop: () => emulator.stop(),
  };
}

for (const makeDriver of [googleDriver, outlookDriver]) {
  describe(`provider faults (${makeDriver.name.replace('Driver', '')} emulator)`, () => {
    let driver: Driver;
    let t: TestApp;

    beforeAll(async () => {
      driver = await makeDriver();
      t = await startTestApp(pglite, new Date().toISOString(), {
        [driver.name]: driver.settings(),
        // Calls that never answer cost a fraction of a second, not fifteen.
        providerTimeoutMs: 400,
      });
    }, 60_000);
    afterAll(async () => {
      await t?.close();
      await driver?.stop();
    });

    it(`with one call in five failing, ${BOOKINGS} bookings reach the provider exactly once and every change there comes back`, async () => {
      const resourceId = await createOpenResource(
        t,
        { name: 'Busy person', kind: 'person', time_zone: 'UTC' },
        { booking_horizon_days: 3650 },
      );
      const calendarId = await driver.calendar();
      const token = await driver.token();
      const connected = await t.request('POST', `/calendars/${driver.name}/connect`, {
        body: {
          resource_id: resourceId,
          calendar_id: calendarId,
          oauth_token: token.access,
          ...(token.refresh ? { refresh_token: token.refresh } : {}),
          sync: { frequency_minutes: 0 },
        },
      });
      expect(connected.statusCode, connected.body).toBe(201);
      const connectionId = connected.json().connection_id as string;

      await driver.failOneInFive();
      const bookingIds: string[] = [];
      let syncs = 0;
      let failures = 0;
      const trySync = async () => {
        syncs++;
        try {
          await syncConnection(t.calendarDeps, connectionId);
        } catch {
          failures++;
        }
      };
      for (let n = 0; n < BOOKINGS; n++) {
        const start = BASE + n * 1_800_000;
        const response = await t.request('POST', '/bookings', {
          body: {
            resource_ids: [resourceId],
            start_time: new Date(start).toISOString(),
            end_time: new Date(start + 1_800_000).toISOString(),
            title: `Slot ${n}`,
          },
        });
        expect(response.statusCode, response.body).toBe(201);
        bookingIds.push(response.json().booking_id as string);
        // Syncs run while bookings keep coming, and the user keeps changing the calendar meanwhile.
        if (n % 20 === 19) {
          await driver.userEvent(calendarId, BASE - 86_400_000 + n * 60_000, `Outside ${n}`);
          await trySync();
        }
      }
      const pending = async () =>
        Number(
          (
            await t.database.db
              .selectFrom('booking_calendar_links')
              .select((eb) => eb.fn.countAll<number>().as('count'))
              .where('connection_id', '=', connectionId)
              .where('push_pending', '=', true)
              .executeTakeFirstOrThrow()
          ).count,
        );
      // A sync that ends well has pushed everything and read every change; faults keep interrupting.
      let clean = false;
      while (!clean && syncs < MAX_SYNCS) {
        syncs++;
        try {
          await syncConnection(t.calendarDeps, connectionId);
          clean = (await pending()) === 0;
        } catch {
          failures++;
        }
      }
      await driver.healthy();
      expect(clean, `still ${await pending()} pending after ${syncs} syncs`).toBe(true);
      expect(failures).toBeGreaterThan(0);

      const atProvider = await driver.bookingIdsAtProvider(calendarId);
      expect(atProvider).toHaveLength(BOOKINGS);
      expect(new Set(atProvider)).toEqual(new Set(bookingIds));

      const events = await t.request('GET', `/calendars/${driver.name}/${connectionId}/events`, {
        query: {
          start: new Date(BASE - 2 * 86_400_000).toISOString(),
          end: new Date(BASE + 20 * 86_400_000).toISOString(),
        },
      });
      const titles = (events.json().events as { title: string }[]).map((event) => event.title);
      expect(titles.filter((title) => title.startsWith('Outside '))).toHaveLength(EXTERNAL_EVENTS);
      expect(titles.filter((title) => title.startsWith('Slot '))).toHaveLength(BOOKINGS);
    }, 240_000);
  });
}

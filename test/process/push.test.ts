import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { googleEnvironment, graphEnvironment } from '../emulators/environment.js';
import { type GoogleEmulator, startGoogleEmulator } from '../emulators/google/emulator.js';
import { type GraphEmulator, startGraphEmulator } from '../emulators/graph/graph-emulator.js';
import { roundTheClockWeekly } from '../support/schedules.js';
import {
  type ClonedDatabase,
  cloneTemplateDatabase,
  randomApiKey,
  type SpawnedServer,
  spawnServer,
} from '../support/spawn-server.js';
import { waitFor } from '../support/wait-for.js';

/**
 * The production wiring, end to end: the built `dist/` started as `npm start` starts it, configured
 * only through its environment, against both emulators. Connections are made through OAuth consent
 * with `frequency_minutes: 0`, so nothing but push (a notification, then the background worker's
 * sync) can bring a change made at the provider into availability.
 */

const postgresSkipReason = inject('postgresSkipReason');
/** What a person waits, at most, between a change in their calendar and Sched knowing of it. */
const PUSH_WITHIN_MS = 2_000;

type Json = any;

describe.skipIf(postgresSkipReason !== null)(
  `sched serve from dist/ keeps push channels through its background worker${postgresSkipReason ? ` (skipped: ${postgresSkipReason})` : ''}`,
  { timeout: 120_000 },
  () => {
    let google: GoogleEmulator;
    let graph: GraphEmulator;
    let database: ClonedDatabase;
    let server: SpawnedServer;
    const key = randomApiKey();

    beforeAll(async () => {
      google = await startGoogleEmulator();
      graph = await startGraphEmulator();
      database = await cloneTemplateDatabase('push');
      server = await spawnServer(
        (port) => ({
          DATABASE_URL: database.url,
          SCHED_BOOTSTRAP_API_KEY: key,
          SCHED_OUTBOUND_ALLOW: '127.0.0.1/32',
          SCHED_PUBLIC_URL: `http://127.0.0.1:${port}`,
          ...googleEnvironment(google),
          ...graphEnvironment(graph),
        }),
        60_000,
        { entry: 'built' },
      );
    }, 240_000);

    afterAll(async () => {
      await server?.stop();
      await google?.stop();
      await graph?.stop();
      await database?.drop();
    });

    async function api(method: string, url: string, body?: unknown): Promise<{ status: number; body: Json }> {
      const response = await fetch(`${server.url}${url}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    }

    async function newResource(name: string): Promise<string> {
      const created = await api('POST', '/resources', { name, kind: 'person', time_zone: 'UTC' });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const id = created.body.resource_id as string;
      const schedule = await api('PUT', `/resources/${id}/schedule`, { weekly: roundTheClockWeekly() });
      expect(schedule.status, JSON.stringify(schedule.body)).toBe(200);
      return id;
    }

    /** Connect through consent as a person would: open the provider's page, come back in a browser. */
    async function connectThroughConsent(
      provider: 'google' | 'outlook',
      resourceId: string,
      calendarId: string,
    ): Promise<string> {
      const started = await api('POST', `/calendars/${provider}/connect`, {
        resource_id: resourceId,
        calendar_id: calendarId,
        sync: { frequency_minutes: 0, realtime: true },
      });
      expect(started.status, JSON.stringify(started.body)).toBe(200);
      const atProvider = await fetch(started.body.authorization_url as string, { redirect: 'manual' });
      expect(atProvider.status).toBe(302);
      const callback = new URL(atProvider.headers.get('location')!);
      expect(callback.origin).toBe(server.url);
      const page = await fetch(callback, { headers: { accept: 'text/html,application/xhtml+xml' } });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toMatch(/<h1 role="status">(Google|Outlook) Calendar connected successfully\.<\/h1>/);
      const listed = await api('GET', `/calendars?resource_id=${resourceId}`);
      const connection = listed.body.calendars.find((c: Json) => c.provider === provider);
      expect(connection.status).toBe('active');
      expect(connection.push).toEqual({ status: 'on', reason: null });
      return connection.connection_id as string;
    }

    /** The live Graph subscription made from now on (one per connection; earlier tests' are left out). */
    function newSubscriptions() {
      const earlier = new Set(graph.control.subscriptions().map((s) => s.id));
      return () => graph.control.subscriptions().find((s) => !earlier.has(s.id));
    }

    /** PATCH renewals of one Graph subscription that succeeded. */
    function renewals(subscriptionId: string): number {
      return graph.control
        .requests()
        .filter(
          (r) =>
            r.method === 'PATCH' && r.path.endsWith(`/subscriptions/${subscriptionId}`) && r.status === 200,
        ).length;
    }

    async function isFree(resourceId: string, start: string, end: string): Promise<boolean> {
      const query = new URLSearchParams({ resource_ids: resourceId, start, end, duration_minutes: '30' });
      const answer = await api('GET', `/availability?${query.toString()}`);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      return answer.body.slots.length > 0;
    }

    /** A change made at the provider becomes busy time within PUSH_WITHIN_MS, twice in a row. */
    async function expectPushTwice(
      resourceId: string,
      change: (start: string, end: string) => Promise<void>,
      firstDay: number,
    ): Promise<void> {
      for (const day of [firstDay, firstDay + 1]) {
        const start = `2027-03-${String(day).padStart(2, '0')}T09:00:00Z`;
        const end = `2027-03-${String(day).padStart(2, '0')}T09:30:00Z`;
        expect(await isFree(resourceId, start, end)).toBe(true);
        await change(start, end);
        await waitFor(
          `the change on day ${day} to block availability through push`,
          async () => !(await isFree(resourceId, start, end)),
          PUSH_WITHIN_MS,
        );
      }
    }

    it('Google: consent, then the background worker opens a watch channel and follows each change through push', async () => {
      const resourceId = await newResource('Google push');
      const calendar = await google.control.createCalendar({ summary: 'push through the process' });
      await connectThroughConsent('google', resourceId, calendar.id);
      // The first sync is the background worker's: it opens the channel to SCHED_PUBLIC_URL.
      await waitFor('the worker to open a Google watch channel', async () =>
        (await google.control.channels()).some((c) => c.calendarId === calendar.id && !c.stopped),
      );
      const [channel] = (await google.control.channels()).filter((c) => c.calendarId === calendar.id);
      expect(channel!.address).toBe(`${server.url}/hooks/google`);
      await expectPushTwice(
        resourceId,
        async (start, end) => {
          await google.control.insertEvent(calendar.id, {
            summary: 'Booked elsewhere',
            start: { dateTime: start },
            end: { dateTime: end },
          });
        },
        1,
      );
      // Syncs run by the worker never stopped the channel.
      const live = (await google.control.channels()).filter(
        (c) => c.calendarId === calendar.id && !c.stopped,
      );
      expect(live).toHaveLength(1);
    });

    it('Outlook: consent, a subscription from the background worker, push twice, and every lifecycle event handled by the worker', async () => {
      const resourceId = await newResource('Outlook push');
      const calendar = graph.control.createCalendar('push through the process');
      const subscriptionOf = newSubscriptions();
      await connectThroughConsent('outlook', resourceId, calendar.id);
      await waitFor('the worker to create a Graph subscription', async () => subscriptionOf() !== undefined);
      expect(subscriptionOf()!.notificationUrl).toBe(`${server.url}/hooks/outlook`);
      expect(subscriptionOf()!.lifecycleNotificationUrl).toBe(`${server.url}/hooks/outlook/lifecycle`);
      const putEvent = async (start: string, end: string) => {
        graph.control.putEvent(calendar.id, {
          subject: 'Booked elsewhere',
          start: { dateTime: start.slice(0, 19), timeZone: 'UTC' },
          end: { dateTime: end.slice(0, 19), timeZone: 'UTC' },
        });
      };
      await expectPushTwice(resourceId, putEvent, 10);

      // reauthorizationRequired: the worker renews the subscription (PATCH), keeping its id.
      const before = subscriptionOf()!;
      await graph.control.sendLifecycle(before.id, 'reauthorizationRequired');
      await waitFor('the worker to renew the subscription', async () => renewals(before.id) === 1);
      expect(subscriptionOf()!.id).toBe(before.id);

      // subscriptionRemoved: Graph has dropped it; the worker makes a new one, and push goes on.
      await graph.control.sendLifecycle(before.id, 'subscriptionRemoved');
      await waitFor('the worker to recreate the subscription', async () => {
        const now = subscriptionOf();
        return now !== undefined && now.id !== before.id;
      });
      await expectPushTwice(resourceId, putEvent, 12);

      // missed: notifications were lost; the worker catches up by delta.
      graph.control.setNotificationDelivery({ drop: true });
      await putEvent('2027-03-20T09:00:00Z', '2027-03-20T09:30:00Z');
      graph.control.setNotificationDelivery({ drop: false });
      expect(await isFree(resourceId, '2027-03-20T09:00:00Z', '2027-03-20T09:30:00Z')).toBe(true);
      await graph.control.sendLifecycle(subscriptionOf()!.id, 'missed');
      await waitFor(
        'the worker to catch up after missed notifications',
        async () => !(await isFree(resourceId, '2027-03-20T09:00:00Z', '2027-03-20T09:30:00Z')),
        PUSH_WITHIN_MS,
      );
    });

    it('a channel close to its expiry is renewed by the background worker, with nothing else due', async () => {
      const resourceId = await newResource('Renewal');
      const calendar = graph.control.createCalendar('renewal');
      const subscriptionOf = newSubscriptions();
      const connectionId = await connectThroughConsent('outlook', resourceId, calendar.id);
      await waitFor('the worker to create a Graph subscription', async () => subscriptionOf() !== undefined);
      const first = subscriptionOf()!;
      // As if days had passed: the stored channel now lapses within the hour.
      const client = await database.connect();
      try {
        await client.query(
          `update calendar_watches set expires_at = now() + interval '1 hour' where connection_id = $1`,
          [connectionId],
        );
      } finally {
        await client.end();
      }
      expect(renewals(first.id)).toBe(0);
      await waitFor(
        'the worker to renew the lapsing subscription',
        async () => renewals(first.id) === 1,
        20_000,
      );
      // Renewed once: the stored expiry moved past the renewal window, so the scan leaves it alone.
      expect(subscriptionOf()!.id).toBe(first.id);
    });
  },
);

import type { KyselyPlugin, RootOperationNode, UnknownRow, QueryResult } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { WebhookDispatcher } from '../../src/jobs/webhook-dispatcher.js';
import type { Db } from '../../src/storage/database.js';
import { describeOnBackends } from '../support/backends.js';
import { gate } from '../support/gate.js';
import { createOpenResource } from '../support/resources.js';
import { waitFor } from '../support/wait-for.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

const NOW = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
const HOUR = 3_600_000;

/** Counts the statements whose text matches `pattern`. */
function counting(db: Db, pattern: RegExp): { db: Db; statements: () => number } {
  let count = 0;
  const text = (node: unknown): string => JSON.stringify(node);
  const plugin: KyselyPlugin = {
    transformQuery(args: { node: RootOperationNode }) {
      if (pattern.test(text(args.node))) count++;
      return args.node;
    },
    transformResult: async (args: { result: QueryResult<UnknownRow> }) => args.result,
  };
  return { db: db.withPlugin(plugin), statements: () => count };
}

/** Counts the statements that update delivery rows from arrays: the batched outcomes. */
const countingRecords = (db: Db) => counting(db, /set status = v\.status/);
/** Counts the claims. */
const countingClaims = (db: Db) => counting(db, /for update of d skip locked/);

describeOnBackends(
  'continuous webhook dispatch',
  (t) => {
    let resourceId: string;
    let slot = 0;
    const running: WebhookDispatcher[] = [];
    const receivers: WebhookReceiver[] = [];

    beforeAll(async () => {
      resourceId = await createOpenResource(t(), { name: 'Room', kind: 'room', time_zone: 'UTC' });
    });
    afterAll(async () => {
      for (const dispatcher of running) await dispatcher.stop();
      for (const receiver of receivers) await receiver.stop();
    });

    async function receiver(): Promise<WebhookReceiver> {
      const started = await new WebhookReceiver().start();
      receivers.push(started);
      return started;
    }

    async function subscribe(url: string, events: string[]): Promise<string> {
      const res = await t().request('POST', '/webhooks', { body: { url, events } });
      expect(res.statusCode).toBe(201);
      return res.json().webhook_id as string;
    }

    async function unsubscribe(webhookId: string): Promise<void> {
      expect((await t().request('DELETE', `/webhooks/${webhookId}`)).statusCode).toBe(204);
    }

    async function book(): Promise<string> {
      slot++;
      const start = new Date(t().clock.now + 2 * HOUR + slot * HOUR);
      start.setUTCMinutes(0, 0, 0);
      const res = await t().request('POST', '/bookings', {
        body: {
          resource_ids: [resourceId],
          start_time: start.toISOString(),
          end_time: new Date(start.getTime() + 1_800_000).toISOString(),
          title: 'Visit',
        },
      });
      expect(res.statusCode).toBe(201);
      return res.json().booking_id as string;
    }

    async function statuses(webhookId: string) {
      return t()
        .database.db.selectFrom('webhook_deliveries')
        .select(['status', 'attempts', 'lease_until', 'last_status_code'])
        .where('webhook_id', '=', webhookId)
        .execute();
    }

    /** Waits until `target` has had `count` requests. */
    async function received(target: WebhookReceiver, count: number, what = 'deliveries'): Promise<void> {
      await waitFor(`${count} ${what} at the receiver`, () => target.received.length === count, 10_000, 10);
    }

    function dispatcher(options: Parameters<ReturnType<typeof t>['dispatcher']>[0]): WebhookDispatcher {
      const started = t().dispatcher({ pollIntervalMs: 60_000, ...options });
      running.push(started);
      return started;
    }

    async function stop(started: WebhookDispatcher): Promise<void> {
      running.splice(running.indexOf(started), 1);
      await started.stop();
    }

    it('keeps sending to a fast receiver while a slow one holds its answer', async () => {
      const slow = await receiver();
      const fast = await receiver();
      const release = gate();
      slow.behaviour = { status: 204, hold: release.opened };
      fast.behaviour = { status: 204 };
      const slowHook = await subscribe(slow.url(), ['booking.cancelled']);
      const fastHook = await subscribe(fast.url(), ['booking.created']);
      // The slow receiver's one delivery is due first, so it is in the first claim, among the fast ones.
      const first = await book();
      await t().request('POST', `/bookings/${first}/cancel`, { body: {} });
      await t()
        .database.db.updateTable('webhook_deliveries')
        .set({ next_attempt_at: new Date(t().clock.now - 1000) })
        .where('webhook_id', '=', slowHook)
        .execute();
      const FAST = 12;
      for (let index = 1; index < FAST; index++) await book();

      // Two slots: a whole batch waiting for its slowest member would stop at one fast delivery.
      const sender = dispatcher({ concurrency: 2 });
      sender.start();
      await received(slow, 1, 'held request');
      await received(fast, FAST);
      await waitFor(
        'the fast deliveries recorded',
        async () => (await statuses(fastHook)).every((row) => row.status === 'succeeded'),
        10_000,
        10,
      );
      const [held] = await statuses(slowHook);
      expect(held).toMatchObject({ status: 'pending', attempts: 1, last_status_code: null });
      expect(held!.lease_until).not.toBeNull();

      release.open();
      await waitFor(
        'the slow delivery recorded',
        async () => (await statuses(slowHook))[0]!.status === 'succeeded',
        10_000,
        10,
      );
      await stop(sender);
      expect(slow.received).toHaveLength(1);
      expect(fast.received).toHaveLength(FAST);
      expect(await statuses(fastHook)).toHaveLength(FAST);
      await unsubscribe(slowHook);
      await unsubscribe(fastHook);
    });

    it('records outcomes that end together in one statement, and stop() writes what is still waiting', async () => {
      const target = await receiver();
      target.behaviour = { status: 200, body: 'ok' };
      const hook = await subscribe(target.url(), ['booking.created']);
      const COUNT = 20;
      for (let index = 0; index < COUNT; index++) await book();

      const counted = countingRecords(t().database.db);
      // Outcomes wait up to a minute for company, and up to 100 fit one statement: none is written
      // before stop().
      const sender = dispatcher({
        db: counted.db,
        concurrency: 8,
        recordDelayMs: 60_000,
        recordBatchSize: 100,
      });
      sender.start();
      await received(target, COUNT);
      expect(counted.statements()).toBe(0);
      expect((await statuses(hook)).filter((row) => row.status === 'pending')).toHaveLength(COUNT);

      await stop(sender);
      expect(counted.statements()).toBe(1);
      const rows = await statuses(hook);
      expect(rows).toHaveLength(COUNT);
      for (const row of rows) {
        expect(row).toMatchObject({
          status: 'succeeded',
          attempts: 1,
          lease_until: null,
          last_status_code: 200,
        });
      }
      // Nothing left to send: a new dispatcher finds no work.
      const after = t().dispatcher({});
      try {
        expect(await after.runOnce()).toBe(0);
      } finally {
        await after.stop();
      }
      expect(target.received).toHaveLength(COUNT);
      await unsubscribe(hook);
    });

    it('claims four times its concurrency at a time, up to eight times it held', async () => {
      const target = await receiver();
      target.behaviour = { status: 204 };
      const hook = await subscribe(target.url(), ['booking.created']);
      const COUNT = 24;
      for (let index = 0; index < COUNT; index++) await book();

      // Two slots: claims of 8 rows, two under way at once (16 held), a third once 8 are done, and a
      // fourth, once there is room again, that finds what the third left: nothing.
      const counted = countingClaims(t().database.db);
      let idle = 0;
      const sender = dispatcher({ db: counted.db, concurrency: 2, onIdle: () => idle++ });
      sender.start();
      await received(target, COUNT);
      await waitFor('the dispatcher idle', () => idle === 1, 10_000, 10);
      await stop(sender);
      expect(counted.statements()).toBe(COUNT / 8 + 1);
      const rows = await statuses(hook);
      expect(rows).toHaveLength(COUNT);
      expect(rows.every((row) => row.status === 'succeeded' && row.attempts === 1)).toBe(true);
      expect(target.received).toHaveLength(COUNT);
      await unsubscribe(hook);
    });

    it('reuses its connections to an origin', async () => {
      const target = await receiver();
      target.behaviour = { status: 204 };
      const hook = await subscribe(target.url(), ['booking.created']);
      const COUNT = 30;
      for (let index = 0; index < COUNT; index++) await book();

      const sender = dispatcher({ concurrency: 3 });
      sender.start();
      await received(target, COUNT);
      await stop(sender);
      expect((await statuses(hook)).every((row) => row.status === 'succeeded')).toBe(true);
      // At most one connection per slot, however many deliveries went over them.
      expect(target.connections).toBeGreaterThanOrEqual(1);
      expect(target.connections).toBeLessThanOrEqual(3);
      await unsubscribe(hook);
    });

    it('hands back a delivery that waited for a slot until its lease could run out mid-attempt', async () => {
      const target = await receiver();
      const release = gate();
      target.behaviour = { status: 204, hold: release.opened };
      const hook = await subscribe(target.url(), ['booking.created']);
      for (let index = 0; index < 3; index++) await book();

      // One slot, held by the first delivery; the other two are claimed ahead and wait for it.
      const sender = dispatcher({ concurrency: 1, timeoutMs: 1_000, leaseMs: 30_000 });
      sender.start();
      await received(target, 1, 'held request');
      await waitFor(
        'the others claimed ahead',
        async () => (await statuses(hook)).filter((row) => row.attempts === 1).length === 3,
        10_000,
        10,
      );
      // Their leases (30 s) no longer outlast an attempt (1 s) when the slot frees up.
      t().clock.advance(29_500);
      release.open();
      await waitFor(
        'the first recorded and the others handed back',
        async () => {
          const rows = await statuses(hook);
          return (
            rows.filter((row) => row.status === 'succeeded').length === 1 &&
            rows.filter((row) => row.status === 'pending' && row.attempts === 0 && !row.lease_until)
              .length === 2
          );
        },
        10_000,
        10,
      );
      expect(target.received).toHaveLength(1);

      // Due at once: the next round sends them, counted as their first attempt.
      sender.wake();
      await received(target, 3);
      await stop(sender);
      const rows = await statuses(hook);
      expect(rows.map((row) => [row.status, row.attempts])).toEqual([
        ['succeeded', 1],
        ['succeeded', 1],
        ['succeeded', 1],
      ]);
      t().clock.set(NOW);
      await unsubscribe(hook);
    });
  },
  NOW,
);

import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WEBHOOK_DELIVERIES_CHANNEL, type WebhookDispatcher } from '../../src/jobs/webhook-dispatcher.js';
import { describeOnBackends } from '../support/backends.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { roundTheClockWeekly } from '../support/schedules.js';
import { gate } from '../support/gate.js';
import { waitFor } from '../support/wait-for.js';

// Real time, so the independent library's 5-minute timestamp tolerance holds for first attempts.
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
const HOUR = 3_600_000;

describeOnBackends(
  'outgoing webhooks',
  (t) => {
    let receiver: WebhookReceiver;
    let dispatcher: WebhookDispatcher;
    let resourceId: string;
    let slot = 0;

    beforeAll(async () => {
      receiver = await new WebhookReceiver().start();
      dispatcher = t().dispatcher({ timeoutMs: 500, random: () => 0.5 });
      resourceId = (
        await t().request('POST', '/resources', { body: { name: 'Room', kind: 'room', time_zone: 'UTC' } })
      ).json().resource_id;
      await t().request('PUT', `/resources/${resourceId}/schedule`, {
        body: { weekly: roundTheClockWeekly() },
      });
    });
    afterAll(async () => {
      await dispatcher?.stop();
      await receiver?.stop();
    });

    async function subscribe(
      events = ['booking.created', 'booking.updated', 'booking.cancelled'],
      path = '/hook',
    ) {
      const res = await t().request('POST', '/webhooks', {
        body: { url: receiver.url(path), events, description: 'crm' },
      });
      expect(res.statusCode).toBe(201);
      return res.json<{ webhook_id: string; secret: string }>();
    }

    /** A booking a day further on each time, so no two tests collide. */
    async function makeBooking(title = 'Visit') {
      slot++;
      const start = new Date(t().clock.now + 2 * HOUR + slot * 2 * HOUR);
      start.setUTCMinutes(0, 0, 0);
      const res = await t().request('POST', '/bookings', {
        body: {
          resource_ids: [resourceId],
          start_time: start.toISOString(),
          end_time: new Date(start.getTime() + 1_800_000).toISOString(),
          title,
        },
      });
      return res;
    }

    async function deliveries(webhookId: string) {
      const res = await t().request('GET', `/webhooks/${webhookId}/deliveries`);
      expect(res.statusCode).toBe(200);
      return res.json().deliveries as any[];
    }

    async function unsubscribe(webhookId: string) {
      expect((await t().request('DELETE', `/webhooks/${webhookId}`)).statusCode).toBe(204);
    }

    it('returns a whsec_ secret once and keeps it only encrypted', async () => {
      const hook = await subscribe();
      expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
      expect(Buffer.from(hook.secret.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);
      const read = await t().request('GET', `/webhooks/${hook.webhook_id}`);
      expect(read.json()).not.toHaveProperty('secret');
      const row = await t()
        .database.db.selectFrom('webhook_endpoints')
        .selectAll()
        .where('webhook_id', '=', hook.webhook_id)
        .executeTakeFirstOrThrow();
      expect(JSON.stringify(row)).not.toContain(hook.secret.slice(6));
      expect(t().secretBox.open(row.secret_sealed)).toBe(hook.secret);
      await unsubscribe(hook.webhook_id);
    });

    it('delivers booking events signed so that the standardwebhooks library verifies them', async () => {
      const hook = await subscribe();
      const booking = (await makeBooking()).json();
      await t().request('PATCH', `/bookings/${booking.booking_id}`, { body: { title: 'Renamed' } });
      await t().request('POST', `/bookings/${booking.booking_id}/cancel`, { body: {} });
      const before = receiver.received.length;
      expect(await dispatcher.runOnce()).toBe(3);
      const got = receiver.received.slice(before);
      expect(got).toHaveLength(3);
      const verifier = new Webhook(hook.secret);
      const payloads = got.map((request) => verifier.verify(request.body, request.headers) as any);
      const byType = Object.fromEntries(payloads.map((p) => [p.type, p]));
      expect(Object.keys(byType).sort()).toEqual(['booking.cancelled', 'booking.created', 'booking.updated']);
      expect(byType['booking.created'].data).toEqual(booking);
      expect(byType['booking.updated'].data.title).toBe('Renamed');
      expect(byType['booking.cancelled'].data).toEqual(
        (await t().request('GET', `/bookings/${booking.booking_id}`)).json(),
      );
      expect(Date.parse(byType['booking.created'].timestamp)).toBe(t().clock.now);
      for (const request of got) {
        expect(request.headers['webhook-id']).toMatch(/^msg_[0-9a-f-]{36}$/);
        expect(request.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
        expect(request.headers['content-type']).toBe('application/json');
      }
      const log = await deliveries(hook.webhook_id);
      expect(log).toHaveLength(3);
      for (const entry of log) {
        expect(entry).toMatchObject({
          status: 'succeeded',
          attempts: 1,
          response_status: 200,
          response_excerpt: 'ok',
          next_attempt_at: null,
          error: null,
        });
        expect(entry.latency_ms).toBeGreaterThanOrEqual(0);
      }
      await unsubscribe(hook.webhook_id);
    });

    it('sends only the events a subscription names, and nothing when nobody subscribes', async () => {
      const hook = await subscribe(['booking.cancelled']);
      const booking = (await makeBooking()).json();
      expect(await dispatcher.runOnce()).toBe(0);
      await t().request('POST', `/bookings/${booking.booking_id}/cancel`, { body: {} });
      expect(await dispatcher.runOnce()).toBe(1);
      await unsubscribe(hook.webhook_id);
      const events = await t().database.db.selectFrom('webhook_events').select('event_id').execute();
      await makeBooking();
      expect(await t().database.db.selectFrom('webhook_events').select('event_id').execute()).toHaveLength(
        events.length,
      );
    });

    it('retries a failed delivery on schedule with the same webhook-id, then succeeds', async () => {
      const hook = await subscribe(['booking.created']);
      await makeBooking();
      receiver.behaviour = { status: 500, body: 'database down' };
      const before = receiver.received.length;
      await dispatcher.runOnce();
      let [entry] = await deliveries(hook.webhook_id);
      expect(entry).toMatchObject({
        status: 'pending',
        attempts: 1,
        response_status: 500,
        response_excerpt: 'database down',
      });
      expect(entry.error).toMatch(/500/);
      expect(Date.parse(entry.next_attempt_at) - t().clock.now).toBe(5_000);
      expect(await dispatcher.runOnce()).toBe(0);
      t().clock.advance(5_000);
      receiver.behaviour = { status: 204 };
      expect(await dispatcher.runOnce()).toBe(1);
      [entry] = await deliveries(hook.webhook_id);
      expect(entry).toMatchObject({ status: 'succeeded', attempts: 2, response_status: 204 });
      const attempts = receiver.received.slice(before);
      expect(attempts).toHaveLength(2);
      expect(attempts[1]!.headers['webhook-id']).toBe(attempts[0]!.headers['webhook-id']);
      expect(attempts[1]!.body).toBe(attempts[0]!.body);
      // The later attempt is signed for its own timestamp; the library's signer agrees with it.
      const signer = new Webhook(hook.secret);
      const expected = signer.sign(
        attempts[1]!.headers['webhook-id']!,
        new Date(Number(attempts[1]!.headers['webhook-timestamp']) * 1000),
        attempts[1]!.body,
      );
      expect(attempts[1]!.headers['webhook-signature']).toBe(expected);
      receiver.behaviour = { status: 200, body: 'ok' };
      await unsubscribe(hook.webhook_id);
    });

    it('treats a redirect as a failure and never follows it', async () => {
      const hook = await subscribe(['booking.created']);
      await makeBooking();
      receiver.behaviour = { status: 302, location: receiver.url('/elsewhere') };
      await dispatcher.runOnce();
      const [entry] = await deliveries(hook.webhook_id);
      expect(entry).toMatchObject({ status: 'pending', response_status: 302 });
      expect(entry.error).toMatch(/redirects are not followed/);
      expect(receiver.received.some((r) => r.path === '/elsewhere')).toBe(false);
      receiver.behaviour = { status: 200, body: 'ok' };
      await unsubscribe(hook.webhook_id);
    });

    it('gives up on a receiver slower than the timeout and says so', async () => {
      const hook = await subscribe(['booking.created']);
      await makeBooking();
      receiver.behaviour = { status: 200, delayMs: 3_000 };
      await dispatcher.runOnce();
      const [entry] = await deliveries(hook.webhook_id);
      expect(entry).toMatchObject({ status: 'pending', attempts: 1, response_status: null });
      expect(entry.error).toMatch(/no answer within 0.5 s/);
      receiver.behaviour = { status: 200, body: 'ok' };
      await unsubscribe(hook.webhook_id);
    });

    it('records a refused connection when the receiver is down', async () => {
      const down = await new WebhookReceiver().start();
      const url = down.url('/gone');
      await down.stop();
      const res = await t().request('POST', '/webhooks', { body: { url, events: ['booking.created'] } });
      const hook = res.json();
      await makeBooking();
      await dispatcher.runOnce();
      const [entry] = await deliveries(hook.webhook_id);
      expect(entry).toMatchObject({ status: 'pending', response_status: null });
      expect(entry.error).toMatch(/refused/i);
      await unsubscribe(hook.webhook_id);
    });

    it('disables the subscription when the receiver answers 410 Gone', async () => {
      const hook = await subscribe(['booking.created']);
      await makeBooking();
      receiver.behaviour = { status: 410 };
      await dispatcher.runOnce();
      const [entry] = await deliveries(hook.webhook_id);
      expect(entry).toMatchObject({ status: 'failed', response_status: 410 });
      const read = (await t().request('GET', `/webhooks/${hook.webhook_id}`)).json();
      expect(read.status).toBe('disabled');
      expect(read.disabled_reason).toMatch(/410/);
      await makeBooking();
      expect(await deliveries(hook.webhook_id)).toHaveLength(1);
      receiver.behaviour = { status: 200, body: 'ok' };
      await unsubscribe(hook.webhook_id);
    });

    it('tries for about three days, marks the delivery failed, and disables a subscription failing for five', async () => {
      const hook = await subscribe(['booking.created']);
      await makeBooking();
      receiver.behaviour = { status: 503 };
      const started = t().clock.now;
      for (let attempt = 1; attempt <= 10; attempt++) {
        expect(await dispatcher.runOnce()).toBe(1);
        const [entry] = await deliveries(hook.webhook_id);
        expect(entry.attempts).toBe(attempt);
        if (attempt < 10) t().clock.set(entry.next_attempt_at);
        else expect(entry).toMatchObject({ status: 'failed', next_attempt_at: null });
      }
      const elapsedDays = (t().clock.now - started) / 86_400_000;
      expect(elapsedDays).toBeGreaterThan(2.8);
      expect(elapsedDays).toBeLessThan(3.3);
      expect((await t().request('GET', `/webhooks/${hook.webhook_id}`)).json().status).toBe('active');

      // Two more days of failures and the subscription is switched off, saying why.
      t().clock.advance(2 * 86_400_000);
      await makeBooking();
      await dispatcher.runOnce();
      const read = (await t().request('GET', `/webhooks/${hook.webhook_id}`)).json();
      expect(read.status).toBe('disabled');
      expect(read.disabled_reason).toMatch(/5 days/);
      receiver.behaviour = { status: 200, body: 'ok' };
      t().clock.set(NOW);
      await unsubscribe(hook.webhook_id);
    });

    it('signs with both secrets for 24 hours after a rotation, then with the new one only', async () => {
      const hook = await subscribe(['booking.created']);
      const rotated = await t().request('POST', `/webhooks/${hook.webhook_id}/rotate-secret`);
      expect(rotated.statusCode).toBe(200);
      const newSecret = rotated.json().secret as string;
      expect(newSecret).not.toBe(hook.secret);
      expect(Date.parse(rotated.json().previous_secret_expires_at) - t().clock.now).toBe(24 * HOUR);
      await makeBooking();
      const before = receiver.received.length;
      await dispatcher.runOnce();
      const during = receiver.received[before]!;
      expect(during.headers['webhook-signature']!.split(' ')).toHaveLength(2);
      expect(() => new Webhook(hook.secret).verify(during.body, during.headers)).not.toThrow();
      expect(() => new Webhook(newSecret).verify(during.body, during.headers)).not.toThrow();

      t().clock.advance(24 * HOUR + 1000);
      await makeBooking();
      await dispatcher.runOnce();
      const after = receiver.received[before + 1]!;
      const id = after.headers['webhook-id']!;
      const at = new Date(Number(after.headers['webhook-timestamp']) * 1000);
      expect(after.headers['webhook-signature']).toBe(new Webhook(newSecret).sign(id, at, after.body));
      expect(after.headers['webhook-signature']).not.toContain(
        new Webhook(hook.secret).sign(id, at, after.body).slice(3),
      );
      t().clock.set(NOW);
      await unsubscribe(hook.webhook_id);
    });

    it('holds deliveries while paused and sends them on resume', async () => {
      const hook = await subscribe(['booking.created']);
      expect(
        (await t().request('PATCH', `/webhooks/${hook.webhook_id}`, { body: { status: 'paused' } })).json()
          .status,
      ).toBe('paused');
      await makeBooking();
      expect(await dispatcher.runOnce()).toBe(0);
      expect((await deliveries(hook.webhook_id))[0]).toMatchObject({ status: 'pending', attempts: 0 });
      await t().request('PATCH', `/webhooks/${hook.webhook_id}`, { body: { status: 'active' } });
      expect(await dispatcher.runOnce()).toBe(1);
      expect((await deliveries(hook.webhook_id))[0]).toMatchObject({ status: 'succeeded' });
      await unsubscribe(hook.webhook_id);
    });

    it('sends a delivery again on a manual retry', async () => {
      const hook = await subscribe(['booking.created']);
      await makeBooking();
      await dispatcher.runOnce();
      const [first] = await deliveries(hook.webhook_id);
      const res = await t().request(
        'POST',
        `/webhooks/${hook.webhook_id}/deliveries/${first.delivery_id}/retry`,
      );
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'pending', delivery_id: first.delivery_id });
      const before = receiver.received.length;
      expect(await dispatcher.runOnce()).toBe(1);
      expect(receiver.received[before]!.headers['webhook-id']).toBe(`msg_${first.delivery_id}`);
      expect((await deliveries(hook.webhook_id))[0]).toMatchObject({ status: 'succeeded', attempts: 2 });
      const missing = await t().request(
        'POST',
        `/webhooks/${hook.webhook_id}/deliveries/00000000-0000-4000-8000-000000000000/retry`,
      );
      expect(missing.statusCode).toBe(404);
      await unsubscribe(hook.webhook_id);
    });

    it('emits nothing for a booking whose transaction rolls back', async () => {
      const hook = await subscribe(['booking.created']);
      // A trigger that fails the booking's transaction after its event has been written.
      const db = t().database.db;
      const { sql } = await import('kysely');
      await sql`create or replace function fail_audit() returns trigger language plpgsql as $$
        begin if new.details->'booking'->>'title' = 'rollback-me' then raise exception 'forced rollback'; end if; return new; end $$`.execute(
        db,
      );
      await sql`create trigger fail_audit before insert on audit_log for each row execute function fail_audit()`.execute(
        db,
      );
      try {
        const res = await makeBooking('rollback-me');
        expect(res.statusCode).toBe(500);
        expect(await deliveries(hook.webhook_id)).toHaveLength(0);
        expect(await dispatcher.runOnce()).toBe(0);
        const committed = await makeBooking('kept');
        expect(committed.statusCode).toBe(201);
        expect(await deliveries(hook.webhook_id)).toHaveLength(1);
      } finally {
        await sql`drop trigger fail_audit on audit_log`.execute(db);
      }
      await dispatcher.runOnce();
      await unsubscribe(hook.webhook_id);
    });

    it('refuses URLs that reach internal addresses or use plain http, naming the field', async () => {
      for (const url of [
        'https://10.0.0.1/hook',
        'https://127.0.0.2/hook',
        'http://[::ffff:127.0.0.2]/',
        'https://169.254.169.254/latest/meta-data/',
        'http://example.com/hook',
        'ftp://example.com/',
      ]) {
        const res = await t().request('POST', '/webhooks', { body: { url, events: ['booking.created'] } });
        expect(res.statusCode, url).toBe(400);
        expect(res.json().errors[0].field).toBe('url');
      }
      const unknownEvent = await t().request('POST', '/webhooks', {
        body: { url: receiver.url(), events: ['booking.created', 'booking.exploded'] },
      });
      expect(unknownEvent.json().errors[0].field).toBe('events[1]');
    });

    it('wakes a listening dispatcher at commit instead of waiting for its next poll', async () => {
      const hook = await subscribe(['booking.created']);
      // A claim that found nothing to send: after it the dispatcher sleeps for a minute.
      const idle = gate();
      const sleepy = t().dispatcher({ pollIntervalMs: 60_000, onIdle: () => idle.open() });
      const unlisten = await t().database.listen(WEBHOOK_DELIVERIES_CHANNEL, () => sleepy.wake());
      try {
        sleepy.start();
        await idle.opened;
        const before = receiver.received.length;
        const booking = (await makeBooking()).json();
        await waitFor('the delivery woken by the commit', () => receiver.received.length > before, 5_000, 20);
        expect(receiver.received.length).toBe(before + 1);
        expect(JSON.parse(receiver.received[before]!.body).data.booking_id).toBe(booking.booking_id);
      } finally {
        await unlisten();
        await sleepy.stop();
      }
      await unsubscribe(hook.webhook_id);
    });

    it('refuses a lease that an attempt could outlast', () => {
      expect(() => t().dispatcher({ leaseMs: 15_000, timeoutMs: 15_000 })).toThrow(/must outlast an attempt/);
    });

    it('keeps subscriptions to their organization', async () => {
      const hook = await subscribe(['booking.created']);
      const other = await t().keyFor('umbrella', ['admin']);
      expect((await t().request('GET', `/webhooks/${hook.webhook_id}`, { key: other })).statusCode).toBe(404);
      expect(
        (await t().request('GET', `/webhooks/${hook.webhook_id}/deliveries`, { key: other })).statusCode,
      ).toBe(404);
      expect((await t().request('GET', '/webhooks', { key: other })).json().webhooks).toEqual([]);
      const writer = await t().keyFor('acme', ['write']);
      expect((await t().request('GET', '/webhooks', { key: writer })).statusCode).toBe(403);
      await unsubscribe(hook.webhook_id);
    });
  },
  NOW,
);

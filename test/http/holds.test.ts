import { expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import type { TestApp } from '../support/test-app.js';

// The suite's clock: Monday 2026-05-18 06:00Z. Every resource is bookable around the clock.
const NOW = '2026-05-18T06:00:00Z';
const MINUTE = 60_000;

const person = (t: TestApp, name = 'P') => createOpenResource(t, { name, kind: 'person', time_zone: 'UTC' });

function book(
  t: TestApp,
  resourceIds: string[],
  start: string,
  end: string,
  extra: Record<string, unknown> = {},
) {
  return t.request('POST', '/bookings', {
    body: { resource_ids: resourceIds, start_time: start, end_time: end, title: 'Meeting', ...extra },
  });
}

function hold(
  t: TestApp,
  resourceIds: string[],
  start: string,
  end: string,
  extra: Record<string, unknown> = {},
) {
  return t.request('POST', '/holds', {
    body: { resource_ids: resourceIds, start_time: start, end_time: end, ...extra },
  });
}

async function slotStarts(t: TestApp, resourceId: string, start: string, end: string): Promise<string[]> {
  const res = await t.request('GET', '/availability', {
    query: { resource_ids: resourceId, start, end, duration_minutes: '60' },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ slots: { start_time: string }[] }>().slots.map((slot) => slot.start_time);
}

async function eventTypes(t: TestApp, bookingId: string): Promise<string[]> {
  const rows = await t.database.db
    .selectFrom('webhook_events')
    .select(['type', 'payload'])
    .orderBy('created_at')
    .execute();
  return rows
    .filter(
      (row) => (JSON.parse(row.payload) as { data: { booking_id?: string } }).data.booking_id === bookingId,
    )
    .map((row) => row.type);
}

describeOnBackends(
  'booking statuses, holds and round-robin',
  (t) => {
    it('subscribes a webhook to the booking events', async () => {
      const res = await t().request('POST', '/webhooks', {
        body: {
          url: 'http://127.0.0.1:9/hooks',
          events: [
            'booking.created',
            'booking.pending',
            'booking.confirmed',
            'booking.rejected',
            'booking.cancelled',
          ],
        },
      });
      expect(res.statusCode, res.body).toBe(201);
    });

    it('a pending booking blocks its time; confirm makes it confirmed, twice changes nothing', async () => {
      const r = await person(t());
      const pending = await book(t(), [r], '2026-05-18T08:00:00Z', '2026-05-18T09:00:00Z', {
        status: 'pending',
      });
      expect(pending.statusCode, pending.body).toBe(201);
      expect(pending.json().status).toBe('pending');
      const id = pending.json().booking_id as string;

      const clash = await book(t(), [r], '2026-05-18T08:30:00Z', '2026-05-18T09:30:00Z');
      expect(clash.statusCode).toBe(409);
      expect(clash.json().code).toBe('SLOT_UNAVAILABLE');
      expect(await slotStarts(t(), r, '2026-05-18T07:00:00Z', '2026-05-18T10:00:00Z')).toEqual([
        '2026-05-18T07:00:00Z',
        '2026-05-18T09:00:00Z',
      ]);
      const listed = await t().request('GET', '/bookings', { query: { status: 'pending', resource_id: r } });
      expect(listed.json().bookings.map((b: { booking_id: string }) => b.booking_id)).toEqual([id]);

      const confirmed = await t().request('POST', `/bookings/${id}/confirm`);
      expect(confirmed.statusCode, confirmed.body).toBe(200);
      expect(confirmed.json().status).toBe('confirmed');
      const again = await t().request('POST', `/bookings/${id}/confirm`);
      expect(again.statusCode).toBe(200);
      expect(again.json()).toEqual(confirmed.json());
      const reject = await t().request('POST', `/bookings/${id}/reject`, { body: {} });
      expect(reject.statusCode).toBe(409);
      expect(reject.json().code).toBe('BOOKING_NOT_PENDING');
      expect((await book(t(), [r], '2026-05-18T08:30:00Z', '2026-05-18T09:30:00Z')).statusCode).toBe(409);
      expect(await eventTypes(t(), id)).toEqual(['booking.created', 'booking.pending', 'booking.confirmed']);
    });

    it('rejecting a pending booking frees its time; a rejected one cannot be confirmed', async () => {
      const r = await person(t());
      const id = (
        await book(t(), [r], '2026-05-18T10:00:00Z', '2026-05-18T11:00:00Z', { status: 'pending' })
      ).json().booking_id as string;
      const rejected = await t().request('POST', `/bookings/${id}/reject`, { body: { reason: 'no room' } });
      expect(rejected.statusCode, rejected.body).toBe(200);
      expect(rejected.json()).toMatchObject({ status: 'rejected', cancel_reason: 'no room' });
      expect((await t().request('POST', `/bookings/${id}/reject`)).statusCode).toBe(200);
      const confirm = await t().request('POST', `/bookings/${id}/confirm`);
      expect(confirm.statusCode).toBe(409);
      expect(confirm.json().code).toBe('BOOKING_NOT_PENDING');
      expect((await book(t(), [r], '2026-05-18T10:00:00Z', '2026-05-18T11:00:00Z')).statusCode).toBe(201);
      expect(await eventTypes(t(), id)).toEqual(['booking.created', 'booking.pending', 'booking.rejected']);
      const audit = await t().request('GET', '/audit-log');
      if (audit.statusCode === 200) {
        expect(JSON.stringify(audit.json())).toContain('booking.rejected');
      }
    });

    it('a cancelled pending booking frees its time and cannot be confirmed', async () => {
      const r = await person(t());
      const id = (
        await book(t(), [r], '2026-05-18T12:00:00Z', '2026-05-18T13:00:00Z', { status: 'pending' })
      ).json().booking_id as string;
      expect((await t().request('POST', `/bookings/${id}/cancel`)).statusCode).toBe(200);
      expect((await t().request('POST', `/bookings/${id}/confirm`)).statusCode).toBe(409);
      expect((await book(t(), [r], '2026-05-18T12:00:00Z', '2026-05-18T13:00:00Z')).statusCode).toBe(201);
    });

    it('rejects an unknown status, and cancelled as a creation status', async () => {
      const r = await person(t());
      for (const status of ['cancelled', 'held', 1]) {
        const res = await book(t(), [r], '2026-05-19T08:00:00Z', '2026-05-19T09:00:00Z', { status });
        expect(res.statusCode).toBe(400);
        expect(JSON.stringify(res.json().errors)).toContain('status');
      }
    });

    it('a hold blocks bookings and other holds until it is released', async () => {
      const r = await person(t());
      const created = await hold(t(), [r], '2026-05-18T14:00:00Z', '2026-05-18T15:00:00Z');
      expect(created.statusCode, created.body).toBe(201);
      const h = created.json();
      expect(h).toMatchObject({
        resource_ids: [r],
        start_time: '2026-05-18T14:00:00Z',
        end_time: '2026-05-18T15:00:00Z',
        expires_at: '2026-05-18T06:05:00.000Z',
      });
      expect((await t().request('GET', `/holds/${h.hold_id}`)).json()).toEqual(h);

      const clash = await book(t(), [r], '2026-05-18T14:30:00Z', '2026-05-18T15:30:00Z');
      expect(clash.statusCode).toBe(409);
      expect(clash.json().code).toBe('SLOT_UNAVAILABLE');
      const other = await hold(t(), [r], '2026-05-18T13:30:00Z', '2026-05-18T14:30:00Z');
      expect(other.statusCode).toBe(409);
      expect(other.json().code).toBe('SLOT_UNAVAILABLE');
      expect(await slotStarts(t(), r, '2026-05-18T13:00:00Z', '2026-05-18T16:00:00Z')).toEqual([
        '2026-05-18T13:00:00Z',
        '2026-05-18T15:00:00Z',
      ]);

      expect((await t().request('DELETE', `/holds/${h.hold_id}`)).statusCode).toBe(204);
      expect((await t().request('GET', `/holds/${h.hold_id}`)).statusCode).toBe(404);
      expect((await t().request('DELETE', `/holds/${h.hold_id}`)).statusCode).toBe(404);
      expect(await slotStarts(t(), r, '2026-05-18T13:00:00Z', '2026-05-18T16:00:00Z')).toHaveLength(3);
      expect((await book(t(), [r], '2026-05-18T14:30:00Z', '2026-05-18T15:30:00Z')).statusCode).toBe(201);
    });

    it('an expired hold blocks nothing and cannot be consumed', async () => {
      const r = await person(t());
      const start = t().clock.now;
      try {
        const h = (
          await hold(t(), [r], '2026-05-20T08:00:00Z', '2026-05-20T09:00:00Z', { ttl_seconds: 60 })
        ).json();
        expect(await slotStarts(t(), r, '2026-05-20T08:00:00Z', '2026-05-20T09:00:00Z')).toEqual([]);
        t().clock.advance(59 * 1000);
        expect((await hold(t(), [r], '2026-05-20T08:00:00Z', '2026-05-20T09:00:00Z')).statusCode).toBe(409);
        t().clock.advance(1000);
        expect(await slotStarts(t(), r, '2026-05-20T08:00:00Z', '2026-05-20T09:00:00Z')).toEqual([
          '2026-05-20T08:00:00Z',
        ]);
        expect((await t().request('GET', `/holds/${h.hold_id}`)).statusCode).toBe(404);
        const consumed = await book(t(), [r], '2026-05-20T08:00:00Z', '2026-05-20T09:00:00Z', {
          hold_id: h.hold_id,
        });
        expect(consumed.statusCode).toBe(409);
        expect(consumed.json().code).toBe('HOLD_EXPIRED');
        // Another hold and a booking take the expired hold's time.
        const second = await hold(t(), [r], '2026-05-20T08:00:00Z', '2026-05-20T08:30:00Z', {
          ttl_seconds: 30,
        });
        expect(second.statusCode, second.body).toBe(201);
        t().clock.advance(30 * 1000);
        const booked = await book(t(), [r], '2026-05-20T08:00:00Z', '2026-05-20T09:00:00Z');
        expect(booked.statusCode, booked.body).toBe(201);
      } finally {
        t().clock.now = start;
      }
    });

    it('turns a hold into a booking; the hold is consumed', async () => {
      const r = await person(t());
      const s = await person(t(), 'S');
      const h = (await hold(t(), [r, s], '2026-05-21T08:00:00Z', '2026-05-21T09:00:00Z')).json();
      const wrongTime = await book(t(), [r, s], '2026-05-21T08:00:00Z', '2026-05-21T08:30:00Z', {
        hold_id: h.hold_id,
      });
      expect(wrongTime.statusCode).toBe(409);
      expect(wrongTime.json().code).toBe('HOLD_MISMATCH');
      const wrongResources = await book(t(), [r], '2026-05-21T08:00:00Z', '2026-05-21T09:00:00Z', {
        hold_id: h.hold_id,
      });
      expect(wrongResources.json().code).toBe('HOLD_MISMATCH');

      const booked = await book(t(), [s, r], '2026-05-21T08:00:00Z', '2026-05-21T09:00:00Z', {
        hold_id: h.hold_id,
        status: 'pending',
      });
      expect(booked.statusCode, booked.body).toBe(201);
      expect(booked.json()).toMatchObject({ status: 'pending', resource_ids: [r, s] });
      expect((await t().request('GET', `/holds/${h.hold_id}`)).statusCode).toBe(404);
      const again = await book(t(), [r, s], '2026-05-21T08:00:00Z', '2026-05-21T09:00:00Z', {
        hold_id: h.hold_id,
      });
      expect(again.statusCode).toBe(404);
      expect(again.json().code).toBe('HOLD_NOT_FOUND');
      expect(await slotStarts(t(), r, '2026-05-21T08:00:00Z', '2026-05-21T09:00:00Z')).toEqual([]);
    });

    it('a hold of another organization is a 404', async () => {
      const r = await person(t());
      const h = (await hold(t(), [r], '2026-05-22T08:00:00Z', '2026-05-22T09:00:00Z')).json();
      const key = await t().keyFor('other-holds', ['write']);
      expect((await t().request('GET', `/holds/${h.hold_id}`, { key })).statusCode).toBe(404);
      expect((await t().request('DELETE', `/holds/${h.hold_id}`, { key })).statusCode).toBe(404);
    });

    it('validates ttl_seconds and assign', async () => {
      const r = await person(t());
      for (const extra of [
        { ttl_seconds: 29 },
        { ttl_seconds: 3601 },
        { ttl_seconds: '60' },
        { assign: 'some' },
      ]) {
        const res = await hold(t(), [r], '2026-05-22T10:00:00Z', '2026-05-22T11:00:00Z', extra);
        expect(res.statusCode).toBe(400);
        expect(JSON.stringify(res.json().errors)).toContain(Object.keys(extra)[0]);
      }
    });

    it('round-robin books one free member, and 409 only when none is free', async () => {
      const [a, b, c] = [await person(t(), 'A'), await person(t(), 'B'), await person(t(), 'C')];
      const pool = [a, b, c];
      expect((await book(t(), [a], '2026-05-25T08:00:00Z', '2026-05-25T09:00:00Z')).statusCode).toBe(201);
      expect((await hold(t(), [b], '2026-05-25T08:00:00Z', '2026-05-25T09:00:00Z')).statusCode).toBe(201);
      const one = await book(t(), pool, '2026-05-25T08:00:00Z', '2026-05-25T09:00:00Z', { assign: 'one' });
      expect(one.statusCode, one.body).toBe(201);
      expect(one.json().resource_ids).toEqual([c]);
      const none = await book(t(), pool, '2026-05-25T08:30:00Z', '2026-05-25T09:00:00Z', { assign: 'one' });
      expect(none.statusCode).toBe(409);
      expect(none.json().code).toBe('SLOT_UNAVAILABLE');
      const heldOne = await hold(t(), pool, '2026-05-25T08:00:00Z', '2026-05-25T09:00:00Z', {
        assign: 'one',
      });
      expect(heldOne.statusCode).toBe(409);
    });

    it('breaks a tie of last booking by the fewest confirmed bookings of the last 30 days, then by id', async () => {
      const members = [await person(t(), 'T1'), await person(t(), 'T2'), await person(t(), 'T3')];
      // The two tied members, lower id first: by id alone the first would win, by the count the second.
      const [low, high] = members.slice(0, 2).sort();
      const last = members[2]!;
      const slot = (hour: number) => [`2026-06-02T${hour}:00:00Z`, `2026-06-02T${hour}:30:00Z`] as const;
      expect((await book(t(), [low!], ...slot(10))).statusCode).toBe(201);
      t().clock.advance(MINUTE);
      // One booking of both: their latest bookings were made at the same instant.
      expect((await book(t(), [low!, high!], ...slot(11))).statusCode).toBe(201);
      t().clock.advance(MINUTE);
      expect((await book(t(), [last], ...slot(12))).statusCode).toBe(201);
      t().clock.advance(MINUTE);
      const chosen = await book(t(), members, ...slot(13), { assign: 'one' });
      expect(chosen.statusCode, chosen.body).toBe(201);
      expect(chosen.json().resource_ids).toEqual([high]);
      // Now `low` was booked least recently.
      t().clock.advance(MINUTE);
      const next = await book(t(), members, ...slot(14), { assign: 'one' });
      expect(next.json().resource_ids).toEqual([low]);
    });

    it('a round-robin hold becomes a booking of the held member', async () => {
      const pool = [await person(t(), 'A'), await person(t(), 'B')];
      const h = await hold(t(), pool, '2026-05-26T08:00:00Z', '2026-05-26T09:00:00Z', { assign: 'one' });
      expect(h.statusCode, h.body).toBe(201);
      expect(h.json().resource_ids).toHaveLength(1);
      const booked = await book(t(), pool, '2026-05-26T08:00:00Z', '2026-05-26T09:00:00Z', {
        assign: 'one',
        hold_id: h.json().hold_id,
      });
      expect(booked.statusCode, booked.body).toBe(201);
      expect(booked.json().resource_ids).toEqual(h.json().resource_ids);
    });

    it('spreads 300 sequential round-robin bookings evenly', async () => {
      const pool = [await person(t(), 'A'), await person(t(), 'B'), await person(t(), 'C')];
      const counts = new Map(pool.map((id) => [id, 0]));
      const base = Date.parse('2026-06-01T00:00:00Z');
      for (let i = 0; i < 300; i++) {
        const start = new Date(base + i * 30 * MINUTE).toISOString();
        const end = new Date(base + (i * 30 + 30) * MINUTE).toISOString();
        const res = await book(t(), pool, start, end, { assign: 'one' });
        expect(res.statusCode, res.body).toBe(201);
        const [chosen] = res.json().resource_ids as string[];
        counts.set(chosen!, (counts.get(chosen!) ?? 0) + 1);
        if (i % 7 === 0) t().clock.advance(1000);
      }
      const values = [...counts.values()];
      expect(values.reduce((x, y) => x + y, 0)).toBe(300);
      expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(1);
    }, 120_000);
  },
  NOW,
);

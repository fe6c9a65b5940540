import { expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';
import type { TestApp } from '../support/test-app.js';

// The suite's clock: Monday 2026-05-18 06:00Z. Berlin is on CEST (+02:00), so 09:00–17:00 is 07:00Z–15:00Z.
const NOW = '2026-05-18T06:00:00Z';

async function resource(t: TestApp, schedule?: Record<string, unknown>, timeZone = 'Europe/Berlin') {
  const created = (
    await t.request('POST', '/resources', { body: { name: 'R', kind: 'room', time_zone: timeZone } })
  ).json();
  if (schedule) {
    const res = await t.request('PUT', `/resources/${created.resource_id}/schedule`, { body: schedule });
    expect(res.statusCode).toBe(200);
  }
  return created.resource_id as string;
}

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

describeOnBackends(
  'bookings',
  (t) => {
    it('books a free slot and returns the booking in UTC', async () => {
      const r = await resource(t());
      const res = await book(t(), [r], '2026-05-18T09:00:00+02:00', '2026-05-18T09:30:00+02:00', {
        description: 'Quarterly',
        attendees: [{ email: 'ada@example.com', name: 'Ada' }],
        metadata: { crm_id: 42 },
      });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({
        status: 'confirmed',
        resource_ids: [r],
        start_time: '2026-05-18T07:00:00Z',
        end_time: '2026-05-18T07:30:00Z',
        title: 'Meeting',
        description: 'Quarterly',
        attendees: [{ email: 'ada@example.com', name: 'Ada' }],
        metadata: { crm_id: 42 },
      });
      const got = await t().request('GET', `/bookings/${res.json().booking_id}`);
      expect(got.json()).toEqual(res.json());
    });

    it('refuses an overlapping booking with 409 SLOT_UNAVAILABLE naming the conflict', async () => {
      const r = await resource(t());
      const first = (await book(t(), [r], '2026-05-18T08:00:00Z', '2026-05-18T09:00:00Z')).json();
      const res = await book(t(), [r], '2026-05-18T08:30:00Z', '2026-05-18T09:30:00Z');
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({
        code: 'SLOT_UNAVAILABLE',
        conflicts: [
          {
            resource_id: r,
            kind: 'booking',
            start_time: '2026-05-18T08:00:00Z',
            end_time: '2026-05-18T09:00:00Z',
          },
        ],
      });
      expect(first.booking_id).toBeTruthy();
    });

    it('allows back-to-back bookings: intervals are half-open', async () => {
      const r = await resource(t());
      expect((await book(t(), [r], '2026-05-18T08:00:00Z', '2026-05-18T09:00:00Z')).statusCode).toBe(201);
      expect((await book(t(), [r], '2026-05-18T09:00:00Z', '2026-05-18T10:00:00Z')).statusCode).toBe(201);
      expect((await book(t(), [r], '2026-05-18T07:00:00Z', '2026-05-18T08:00:00Z')).statusCode).toBe(201);
    });

    it('refuses a time outside the schedule, before the notice and past the horizon', async () => {
      const r = await resource(t(), {
        weekly: { mon: [['09:00', '17:00']], tue: [['09:00', '17:00']] },
        minimum_notice_minutes: 120,
        booking_horizon_days: 7,
      });
      const outside = await book(t(), [r], '2026-05-18T15:00:00Z', '2026-05-18T15:30:00Z');
      expect(outside.statusCode).toBe(409);
      expect(outside.json().conflicts).toEqual([
        {
          resource_id: r,
          kind: 'outside_schedule',
          start_time: '2026-05-18T15:00:00Z',
          end_time: '2026-05-18T15:30:00Z',
        },
      ]);
      // 07:30Z is inside working hours but before now (06:00Z) + 120 minutes.
      expect(
        (await book(t(), [r], '2026-05-18T07:30:00Z', '2026-05-18T08:00:00Z')).json().conflicts[0].kind,
      ).toBe('outside_schedule');
      expect((await book(t(), [r], '2026-05-18T08:00:00Z', '2026-05-18T08:30:00Z')).statusCode).toBe(201);
      // Tuesday 2026-05-26 is past the 7-day horizon.
      expect((await book(t(), [r], '2026-05-26T08:00:00Z', '2026-05-26T08:30:00Z')).statusCode).toBe(409);
      expect((await book(t(), [r], '2026-05-19T08:00:00Z', '2026-05-19T08:30:00Z')).statusCode).toBe(201);
    });

    it('keeps the buffers around existing bookings free', async () => {
      const r = await resource(t(), {
        weekly: { mon: [['09:00', '17:00']] },
        buffer_before_minutes: 15,
        buffer_after_minutes: 10,
      });
      expect((await book(t(), [r], '2026-05-18T09:00:00Z', '2026-05-18T10:00:00Z')).statusCode).toBe(201);
      const tooSoonAfter = await book(t(), [r], '2026-05-18T10:05:00Z', '2026-05-18T10:30:00Z');
      expect(tooSoonAfter.statusCode).toBe(409);
      expect(tooSoonAfter.json().conflicts[0]).toMatchObject({
        kind: 'booking',
        start_time: '2026-05-18T09:00:00Z',
      });
      expect((await book(t(), [r], '2026-05-18T10:10:00Z', '2026-05-18T10:30:00Z')).statusCode).toBe(201);
      expect((await book(t(), [r], '2026-05-18T08:00:00Z', '2026-05-18T08:50:00Z')).statusCode).toBe(409);
      expect((await book(t(), [r], '2026-05-18T08:00:00Z', '2026-05-18T08:45:00Z')).statusCode).toBe(201);
    });

    it('ignore_availability skips the schedule but never allows an overlap', async () => {
      const r = await resource(t(), { weekly: { mon: [['09:00', '10:00']] } });
      const night = await book(t(), [r], '2026-05-18T22:00:00Z', '2026-05-18T23:00:00Z', {
        ignore_availability: true,
      });
      expect(night.statusCode).toBe(201);
      const overlap = await book(t(), [r], '2026-05-18T22:30:00Z', '2026-05-18T23:30:00Z', {
        ignore_availability: true,
      });
      expect(overlap.statusCode).toBe(409);
      expect(overlap.json().conflicts).toEqual([
        {
          resource_id: r,
          kind: 'booking',
          start_time: '2026-05-18T22:00:00Z',
          end_time: '2026-05-18T23:00:00Z',
        },
      ]);
    });

    it('books several resources together, all or nothing', async () => {
      const a = await resource(t());
      const b = await resource(t());
      expect((await book(t(), [b], '2026-05-18T11:00:00Z', '2026-05-18T12:00:00Z')).statusCode).toBe(201);
      const refused = await book(t(), [a, b], '2026-05-18T11:30:00Z', '2026-05-18T12:30:00Z');
      expect(refused.statusCode).toBe(409);
      expect(refused.json().conflicts.map((c: { resource_id: string }) => c.resource_id)).toEqual([b]);
      const aBookings = (await t().request('GET', `/bookings?resource_id=${a}`)).json();
      expect(aBookings.bookings).toEqual([]);
      const both = await book(t(), [a, b], '2026-05-18T12:00:00Z', '2026-05-18T12:30:00Z');
      expect(both.statusCode).toBe(201);
      expect(both.json().resource_ids).toEqual([a, b]);
      expect((await book(t(), [a], '2026-05-18T12:15:00Z', '2026-05-18T12:45:00Z')).statusCode).toBe(409);
    });

    it('reschedules with PATCH, keeping the id and freeing the old slot', async () => {
      const r = await resource(t());
      const created = (await book(t(), [r], '2026-05-18T08:00:00Z', '2026-05-18T09:00:00Z')).json();
      const moved = await t().request('PATCH', `/bookings/${created.booking_id}`, {
        body: { start_time: '2026-05-18T08:30:00Z', end_time: '2026-05-18T09:30:00Z', title: 'Moved' },
      });
      expect(moved.statusCode).toBe(200);
      expect(moved.json()).toMatchObject({
        booking_id: created.booking_id,
        start_time: '2026-05-18T08:30:00Z',
        end_time: '2026-05-18T09:30:00Z',
        title: 'Moved',
      });
      expect((await book(t(), [r], '2026-05-18T08:00:00Z', '2026-05-18T08:30:00Z')).statusCode).toBe(201);
      expect((await book(t(), [r], '2026-05-18T09:00:00Z', '2026-05-18T09:15:00Z')).statusCode).toBe(409);
    });

    it('refuses a reschedule onto another booking and leaves the booking as it was', async () => {
      const r = await resource(t());
      const a = (await book(t(), [r], '2026-05-18T10:00:00Z', '2026-05-18T11:00:00Z')).json();
      await book(t(), [r], '2026-05-18T11:00:00Z', '2026-05-18T12:00:00Z');
      const res = await t().request('PATCH', `/bookings/${a.booking_id}`, {
        body: { end_time: '2026-05-18T11:30:00Z' },
      });
      expect(res.statusCode).toBe(409);
      expect((await t().request('GET', `/bookings/${a.booking_id}`)).json()).toEqual(a);
    });

    it('edits a title without touching the time', async () => {
      const r = await resource(t());
      const a = (await book(t(), [r], '2026-05-18T13:00:00Z', '2026-05-18T13:30:00Z')).json();
      const res = await t().request('PATCH', `/bookings/${a.booking_id}`, {
        body: { title: 'Renamed', metadata: {} },
      });
      expect(res.json()).toMatchObject({ title: 'Renamed', start_time: a.start_time, metadata: {} });
    });

    it('cancels idempotently and frees the slot', async () => {
      const r = await resource(t());
      const a = (await book(t(), [r], '2026-05-18T14:00:00Z', '2026-05-18T14:30:00Z')).json();
      const cancelled = await t().request('POST', `/bookings/${a.booking_id}/cancel`, {
        body: { reason: 'ill' },
      });
      expect(cancelled.statusCode).toBe(200);
      expect(cancelled.json()).toMatchObject({ status: 'cancelled', cancel_reason: 'ill' });
      const again = await t().request('POST', `/bookings/${a.booking_id}/cancel`, { body: {} });
      expect(again.statusCode).toBe(200);
      expect(again.json()).toEqual(cancelled.json());
      expect((await book(t(), [r], '2026-05-18T14:00:00Z', '2026-05-18T14:30:00Z')).statusCode).toBe(201);
      const patch = await t().request('PATCH', `/bookings/${a.booking_id}`, { body: { title: 'x' } });
      expect(patch.statusCode).toBe(409);
      expect(patch.json().code).toBe('BOOKING_CANCELLED');
    });

    it('cancels without a body at all', async () => {
      const r = await resource(t());
      const a = (await book(t(), [r], '2026-05-18T14:00:00Z', '2026-05-18T14:30:00Z')).json();
      const res = await t().request('POST', `/bookings/${a.booking_id}/cancel`);
      expect(res.statusCode).toBe(200);
      expect(res.json().status).toBe('cancelled');
    });

    it('lists bookings by resource, window and status, in start order', async () => {
      const r = await resource(t(), { weekly: { tue: [['00:00', '24:00']] } });
      const ids: string[] = [];
      for (const hour of ['12', '10', '14', '08']) {
        ids.push(
          (await book(t(), [r], `2026-05-19T${hour}:00:00Z`, `2026-05-19T${hour}:30:00Z`)).json().booking_id,
        );
      }
      await t().request('POST', `/bookings/${ids[2]}/cancel`, { body: {} });
      const all = (await t().request('GET', `/bookings?resource_id=${r}`)).json();
      expect(all.bookings.map((b: { start_time: string }) => b.start_time)).toEqual([
        '2026-05-19T08:00:00Z',
        '2026-05-19T10:00:00Z',
        '2026-05-19T12:00:00Z',
        '2026-05-19T14:00:00Z',
      ]);
      const confirmed = (await t().request('GET', `/bookings?resource_id=${r}&status=confirmed`)).json();
      expect(confirmed.bookings).toHaveLength(3);
      const window = (
        await t().request(
          'GET',
          `/bookings?resource_id=${r}&start=2026-05-19T10:15:00Z&end=2026-05-19T12:15:00Z`,
        )
      ).json();
      expect(window.bookings.map((b: { start_time: string }) => b.start_time)).toEqual([
        '2026-05-19T10:00:00Z',
        '2026-05-19T12:00:00Z',
      ]);
      const paged = (await t().request('GET', `/bookings?resource_id=${r}&limit=3`)).json();
      expect(paged.bookings).toHaveLength(3);
      const rest = (
        await t().request('GET', `/bookings?resource_id=${r}&limit=3&cursor=${paged.next_cursor}`)
      ).json();
      expect(rest.bookings.map((b: { start_time: string }) => b.start_time)).toEqual([
        '2026-05-19T14:00:00Z',
      ]);
      expect(rest.next_cursor).toBeNull();
    });

    it('counts created and refused bookings in /metrics', async () => {
      const res = await t().request('GET', '/metrics', { key: null });
      expect(res.statusCode).toBe(200);
      expect(res.body).toMatch(/sched_bookings_created_total \d+/);
      const created = Number(/sched_bookings_created_total (\d+)/.exec(res.body)?.[1]);
      const conflicts = Number(/sched_booking_conflicts_total (\d+)/.exec(res.body)?.[1]);
      expect(created).toBeGreaterThan(10);
      expect(conflicts).toBeGreaterThan(3);
      expect(res.body).toContain('sched_http_request_duration_seconds_bucket{');
      expect(res.body).toContain('route="/bookings/:booking_id"');
    });
  },
  NOW,
);

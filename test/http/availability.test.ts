import { expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';
import type { TestApp } from '../support/test-app.js';

// Monday 2026-03-16 06:00Z: New York is already on EDT (-04:00), Berlin still on CET (+01:00).
const NOW = '2026-03-16T06:00:00Z';

async function resource(t: TestApp, timeZone: string, weekly?: Record<string, [string, string][]>) {
  const id = (
    await t.request('POST', '/resources', { body: { name: timeZone, kind: 'person', time_zone: timeZone } })
  ).json().resource_id as string;
  if (weekly) await t.request('PUT', `/resources/${id}/schedule`, { body: { weekly } });
  return id;
}

async function availability(t: TestApp, query: Record<string, string>) {
  const res = await t.request('GET', '/availability', { query });
  expect(res.statusCode).toBe(200);
  return res.json<{
    time_zone: string;
    slots: { start_time: string; end_time: string; resource_ids: string[] }[];
  }>();
}

describeOnBackends(
  'availability and free/busy',
  (t) => {
    it('lists the working day in slots of the duration, in UTC by default', async () => {
      const r = await resource(t(), 'Europe/Berlin');
      const body = await availability(t(), {
        resource_ids: r,
        start: '2026-03-16T00:00:00Z',
        end: '2026-03-17T00:00:00Z',
        duration_minutes: '60',
      });
      expect(body.time_zone).toBe('UTC');
      // 09:00–17:00 CET is 08:00Z–16:00Z: eight one-hour slots.
      expect(body.slots.map((s) => s.start_time)).toEqual([
        '2026-03-16T08:00:00Z',
        '2026-03-16T09:00:00Z',
        '2026-03-16T10:00:00Z',
        '2026-03-16T11:00:00Z',
        '2026-03-16T12:00:00Z',
        '2026-03-16T13:00:00Z',
        '2026-03-16T14:00:00Z',
        '2026-03-16T15:00:00Z',
      ]);
      expect(body.slots[0]).toEqual({
        start_time: '2026-03-16T08:00:00Z',
        end_time: '2026-03-16T09:00:00Z',
        resource_ids: [r],
      });
    });

    it('gives times with the offset of the time_zone asked for', async () => {
      const r = await resource(t(), 'Asia/Kolkata');
      const body = await availability(t(), {
        resource_ids: r,
        start: '2026-03-17T00:00:00+05:30',
        end: '2026-03-18T00:00:00+05:30',
        duration_minutes: '480',
        time_zone: 'Asia/Kolkata',
      });
      expect(body.time_zone).toBe('Asia/Kolkata');
      expect(body.slots).toEqual([
        { start_time: '2026-03-17T09:00:00+05:30', end_time: '2026-03-17T17:00:00+05:30', resource_ids: [r] },
      ]);
    });

    it('steps slots by interval_minutes from the start of each free interval', async () => {
      const r = await resource(t(), 'UTC', { mon: [['09:00', '10:30']] });
      const body = await availability(t(), {
        resource_ids: r,
        start: '2026-03-16T00:00:00Z',
        end: '2026-03-17T00:00:00Z',
        duration_minutes: '45',
        interval_minutes: '15',
      });
      expect(body.slots.map((s) => `${s.start_time.slice(11, 16)}-${s.end_time.slice(11, 16)}`)).toEqual([
        '09:00-09:45',
        '09:15-10:00',
        '09:30-10:15',
        '09:45-10:30',
      ]);
    });

    it('removes booked time, and gives it back when the booking is cancelled', async () => {
      const r = await resource(t(), 'UTC', { mon: [['09:00', '12:00']] });
      const booking = (
        await t().request('POST', '/bookings', {
          body: {
            resource_ids: [r],
            start_time: '2026-03-16T10:00:00Z',
            end_time: '2026-03-16T11:00:00Z',
            title: 'b',
          },
        })
      ).json();
      const query = {
        resource_ids: r,
        start: '2026-03-16T00:00:00Z',
        end: '2026-03-17T00:00:00Z',
        duration_minutes: '60',
      };
      expect((await availability(t(), query)).slots.map((s) => s.start_time)).toEqual([
        '2026-03-16T09:00:00Z',
        '2026-03-16T11:00:00Z',
      ]);
      await t().request('POST', `/bookings/${booking.booking_id}/cancel`, { body: {} });
      expect((await availability(t(), query)).slots.map((s) => s.start_time)).toEqual([
        '2026-03-16T09:00:00Z',
        '2026-03-16T10:00:00Z',
        '2026-03-16T11:00:00Z',
      ]);
    });

    it('finds the common hours of New York and Berlin while only New York has changed its clocks', async () => {
      const ny = await resource(t(), 'America/New_York');
      const berlin = await resource(t(), 'Europe/Berlin');
      const body = await availability(t(), {
        resource_ids: `${ny},${berlin}`,
        start: '2026-03-17T00:00:00Z',
        end: '2026-03-18T00:00:00Z',
        duration_minutes: '60',
        mode: 'all',
      });
      // New York 09:00 EDT = 13:00Z; Berlin 17:00 CET = 16:00Z: three common hours (two in normal weeks).
      expect(body.slots).toEqual([
        { start_time: '2026-03-17T13:00:00Z', end_time: '2026-03-17T14:00:00Z', resource_ids: [ny, berlin] },
        { start_time: '2026-03-17T14:00:00Z', end_time: '2026-03-17T15:00:00Z', resource_ids: [ny, berlin] },
        { start_time: '2026-03-17T15:00:00Z', end_time: '2026-03-17T16:00:00Z', resource_ids: [ny, berlin] },
      ]);
    });

    it('lists in any-mode every slot where someone is free, with the free resources', async () => {
      const a = await resource(t(), 'UTC', { tue: [['09:00', '11:00']] });
      const b = await resource(t(), 'UTC', { tue: [['10:00', '12:00']] });
      const body = await availability(t(), {
        resource_ids: `${a},${b}`,
        start: '2026-03-17T00:00:00Z',
        end: '2026-03-18T00:00:00Z',
        duration_minutes: '60',
        mode: 'any',
      });
      expect(body.slots.map((s) => [s.start_time.slice(11, 16), s.resource_ids])).toEqual([
        ['09:00', [a]],
        ['10:00', [a, b]],
        ['11:00', [b]],
      ]);
    });

    it('honours the minimum notice against the current time', async () => {
      const r = await resource(t(), 'UTC', { mon: [['06:00', '10:00']] });
      await t().request('PUT', `/resources/${r}/schedule`, {
        body: { weekly: { mon: [['06:00', '10:00']] }, minimum_notice_minutes: 90 },
      });
      const body = await availability(t(), {
        resource_ids: r,
        start: '2026-03-16T00:00:00Z',
        end: '2026-03-17T00:00:00Z',
        duration_minutes: '60',
      });
      // Now is 06:00Z; 90 minutes of notice leave 08:00 as the first slot on the hourly grid.
      expect(body.slots.map((s) => s.start_time)).toEqual(['2026-03-16T08:00:00Z', '2026-03-16T09:00:00Z']);
    });

    it('reports merged busy time per resource in /freebusy', async () => {
      const r = await resource(t(), 'UTC', { wed: [['00:00', '24:00']] });
      const other = await resource(t(), 'UTC');
      for (const [start, end] of [
        ['09:00', '10:00'],
        ['10:00', '10:30'],
        ['13:00', '14:00'],
      ]) {
        await t().request('POST', '/bookings', {
          body: {
            resource_ids: [r],
            start_time: `2026-03-18T${start}:00Z`,
            end_time: `2026-03-18T${end}:00Z`,
            title: 'x',
          },
        });
      }
      const res = await t().request('POST', '/freebusy', {
        body: { resource_ids: [r, other], start: '2026-03-18T09:15:00Z', end: '2026-03-19T00:00:00Z' },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        resources: {
          [r]: {
            busy: [
              { start_time: '2026-03-18T09:15:00Z', end_time: '2026-03-18T10:30:00Z', source: 'booking' },
              { start_time: '2026-03-18T13:00:00Z', end_time: '2026-03-18T14:00:00Z', source: 'booking' },
            ],
          },
          [other]: { busy: [] },
        },
      });
    });

    it('refuses more than 100 resources in one request', async () => {
      const ids = Array.from(
        { length: 101 },
        (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      );
      const res = await t().request('GET', '/availability', {
        query: {
          resource_ids: ids.join(','),
          start: '2026-03-16T00:00:00Z',
          end: '2026-03-17T00:00:00Z',
          duration_minutes: '30',
        },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().errors[0].field).toBe('resource_ids');
    });
  },
  NOW,
);

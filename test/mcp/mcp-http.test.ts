import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { freePort, startTestApp, type TestApp } from '../support/test-app.js';

const NOW = '2026-05-18T06:00:00Z';

type ToolAnswer = { isError?: boolean; structuredContent?: Record<string, unknown>; content: unknown };

async function connect(t: TestApp, key: string): Promise<Client> {
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${t.publicUrl}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<ToolAnswer> {
  return (await client.callTool({ name, arguments: args })) as ToolAnswer;
}

for (const backend of backends) {
  const suffix = backend.skipReason ? ` — SKIPPED: ${backend.skipReason}` : '';
  describe.skipIf(backend.skipReason)(`MCP over HTTP on ${backend.name}${suffix}`, () => {
    let t: TestApp;
    let writer: Client;
    let writeKey: string;
    beforeAll(async () => {
      t = await startTestApp(backend, NOW, { listenPort: await freePort() });
      writeKey = await t.keyFor('acme', ['read', 'write']);
      writer = await connect(t, writeKey);
    }, 60_000);
    afterAll(async () => {
      await writer?.close();
      await t?.close();
    });

    it('lists the tools', async () => {
      const { tools } = await writer.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual(
        [
          'book',
          'cancel',
          'find_slots',
          'hold_slot',
          'list_booking_pages',
          'list_bookings',
          'reschedule',
        ].sort(),
      );
    });

    it('finds slots, books, reschedules, lists and cancels, audited with the key label', async () => {
      const r = await createOpenResource(t, { name: 'Dr. Ada', kind: 'person', time_zone: 'UTC' });
      const slots = await call(writer, 'find_slots', {
        resource_ids: [r],
        start: '2026-05-19T09:00:00Z',
        end: '2026-05-19T11:00:00Z',
        duration_minutes: 30,
      });
      expect(slots.isError).toBeFalsy();
      const found = slots.structuredContent!.slots as { start_time: string; end_time: string }[];
      expect(found.length).toBe(4);
      expect(found[0]!.start_time).toBe('2026-05-19T09:00:00Z');

      const booked = await call(writer, 'book', {
        resource_ids: [r],
        start_time: found[0]!.start_time,
        end_time: found[0]!.end_time,
        title: 'Check-up',
        attendees: [{ email: 'caller@example.com', name: 'Caller' }],
      });
      expect(booked.isError).toBeFalsy();
      expect(booked.structuredContent).toMatchObject({ status: 'confirmed', title: 'Check-up' });
      const bookingId = booked.structuredContent!.booking_id as string;
      const text = (booked.content as { type: string; text: string }[])[0]!;
      expect(JSON.parse(text.text)).toEqual(booked.structuredContent);

      const after = await call(writer, 'find_slots', {
        resource_ids: [r],
        start: '2026-05-19T09:00:00Z',
        end: '2026-05-19T11:00:00Z',
        duration_minutes: 30,
      });
      expect((after.structuredContent!.slots as unknown[]).length).toBe(3);

      const moved = await call(writer, 'reschedule', {
        booking_id: bookingId,
        start_time: '2026-05-19T10:00:00Z',
        end_time: '2026-05-19T10:30:00Z',
      });
      expect(moved.isError).toBeFalsy();
      expect(moved.structuredContent).toMatchObject({
        booking_id: bookingId,
        start_time: '2026-05-19T10:00:00Z',
      });

      const listed = await call(writer, 'list_bookings', { resource_id: r });
      expect(
        (listed.structuredContent!.bookings as { booking_id: string }[]).map((b) => b.booking_id),
      ).toEqual([bookingId]);

      const cancelled = await call(writer, 'cancel', {
        booking_id: bookingId,
        reason: 'caller changed plans',
      });
      expect(cancelled.isError).toBeFalsy();
      expect(cancelled.structuredContent).toMatchObject({ status: 'cancelled' });

      const keys = (await t.request('GET', '/api-keys')).json();
      const audit = (await t.request('GET', '/audit-log', { query: { limit: '100' } })).json();
      const mcpEntries = (audit.entries as { action: string; actor: string; target_id: string }[]).filter(
        (e) => e.action.startsWith('mcp.'),
      );
      expect(mcpEntries.map((e) => e.action).reverse()).toEqual([
        'mcp.find_slots',
        'mcp.book',
        'mcp.find_slots',
        'mcp.reschedule',
        'mcp.list_bookings',
        'mcp.cancel',
      ]);
      const actors = new Set(mcpEntries.map((e) => e.actor));
      expect(actors.size).toBe(1);
      const [actor] = [...actors];
      expect(actor).toMatch(/^api_key:/);
      expect((keys.api_keys as { api_key_id: string }[]).map((k) => `api_key:${k.api_key_id}`)).toContain(
        actor,
      );
      // The booking's own audit entries carry the same key.
      const created = (audit.entries as { action: string; actor: string; target_id: string }[]).find(
        (e) => e.target_id === bookingId && !e.action.startsWith('mcp.'),
      );
      expect(created?.actor).toBe(actor);
    });

    it('returns a validation error as isError naming the field', async () => {
      const r = await createOpenResource(t, { name: 'Room', kind: 'room', time_zone: 'UTC' });
      const answer = await call(writer, 'book', {
        resource_ids: [r],
        start_time: 'next tuesday',
        end_time: '2026-05-19T10:30:00Z',
        title: 'x',
      });
      expect(answer.isError).toBe(true);
      expect(answer.structuredContent).toMatchObject({ status: 400 });
      const errors = answer.structuredContent!.errors as { field: string }[];
      expect(errors.map((e) => e.field)).toContain('start_time');
    });

    it('a read key cannot book: 403 as isError', async () => {
      const r = await createOpenResource(t, { name: 'Desk', kind: 'equipment', time_zone: 'UTC' });
      const reader = await connect(t, await t.keyFor('acme', ['read']));
      try {
        const answer = await call(reader, 'book', {
          resource_ids: [r],
          start_time: '2026-05-19T09:00:00Z',
          end_time: '2026-05-19T09:30:00Z',
          title: 'x',
        });
        expect(answer.isError).toBe(true);
        expect(answer.structuredContent).toMatchObject({ status: 403, code: 'FORBIDDEN' });
        const listed = await call(reader, 'list_bookings', {});
        expect(listed.isError).toBeFalsy();
      } finally {
        await reader.close();
      }
    });

    it('another organization’s booking is not found', async () => {
      const other = await connect(t, await t.keyFor('globex', ['read', 'write']));
      try {
        const r = await createOpenResource(t, { name: 'Lab', kind: 'room', time_zone: 'UTC' });
        const booked = await call(writer, 'book', {
          resource_ids: [r],
          start_time: '2026-05-20T09:00:00Z',
          end_time: '2026-05-20T09:30:00Z',
          title: 'x',
        });
        const answer = await call(other, 'cancel', { booking_id: booked.structuredContent!.booking_id });
        expect(answer.isError).toBe(true);
        expect(answer.structuredContent).toMatchObject({ status: 404 });
      } finally {
        await other.close();
      }
    });

    it('holds a slot for one of a pool, then books it with the hold', async () => {
      const a = await createOpenResource(t, { name: 'Chair A', kind: 'equipment', time_zone: 'UTC' });
      const b = await createOpenResource(t, { name: 'Chair B', kind: 'equipment', time_zone: 'UTC' });
      const slot = { start_time: '2026-05-21T09:00:00Z', end_time: '2026-05-21T09:30:00Z' };
      const held = await call(writer, 'hold_slot', { resource_ids: [a, b], assign: 'one', ...slot });
      expect(held.isError, JSON.stringify(held.structuredContent)).toBeFalsy();
      const hold = held.structuredContent as { hold_id: string; resource_ids: string[] };
      expect(hold.resource_ids).toHaveLength(1);
      const chosen = hold.resource_ids[0]!;
      expect([a, b]).toContain(chosen);

      // While it lives, the held resource is not offered and cannot be booked by anyone else.
      const slots = await call(writer, 'find_slots', {
        resource_ids: [chosen],
        start: slot.start_time,
        end: slot.end_time,
        duration_minutes: 30,
      });
      expect(slots.structuredContent!.slots).toEqual([]);
      const taken = await call(writer, 'book', { resource_ids: [chosen], ...slot, title: 'Other caller' });
      expect(taken.isError).toBe(true);
      expect(taken.structuredContent).toMatchObject({ status: 409, code: 'SLOT_UNAVAILABLE' });

      const booked = await call(writer, 'book', {
        resource_ids: [chosen],
        ...slot,
        title: 'Fitting',
        hold_id: hold.hold_id,
      });
      expect(booked.isError, JSON.stringify(booked.structuredContent)).toBeFalsy();
      expect(booked.structuredContent).toMatchObject({ resource_ids: [chosen], status: 'confirmed' });
      const again = await call(writer, 'book', {
        resource_ids: [chosen],
        ...slot,
        title: 'Fitting',
        hold_id: hold.hold_id,
      });
      expect(again.isError).toBe(true);
      expect(again.structuredContent).toMatchObject({ status: 404, code: 'HOLD_NOT_FOUND' });
    });

    it('books a weekly series through book with recurrence, all or nothing', async () => {
      const r = await createOpenResource(t, {
        name: 'Dr. Weekly',
        kind: 'person',
        time_zone: 'America/New_York',
      });
      const series = await call(writer, 'book', {
        resource_ids: [r],
        start_time: '2026-06-01T13:00:00Z',
        end_time: '2026-06-01T13:30:00Z',
        title: 'Physio',
        recurrence: { frequency: 'weekly', count: 4 },
      });
      expect(series.isError, JSON.stringify(series.structuredContent)).toBeFalsy();
      const bookings = series.structuredContent!.bookings as { start_time: string }[];
      expect(bookings.map((b) => b.start_time)).toEqual([
        '2026-06-01T13:00:00Z',
        '2026-06-08T13:00:00Z',
        '2026-06-15T13:00:00Z',
        '2026-06-22T13:00:00Z',
      ]);
      const clash = await call(writer, 'book', {
        resource_ids: [r],
        start_time: '2026-05-25T13:00:00Z',
        end_time: '2026-05-25T13:30:00Z',
        title: 'Physio again',
        recurrence: { frequency: 'weekly', count: 3 },
      });
      expect(clash.isError).toBe(true);
      expect(clash.structuredContent).toMatchObject({ status: 409, code: 'SLOT_UNAVAILABLE' });
      const bad = await call(writer, 'book', {
        resource_ids: [r],
        start_time: '2026-07-01T13:00:00Z',
        end_time: '2026-07-01T13:30:00Z',
        title: 'x',
        recurrence: { frequency: 'hourly', count: 3 },
      });
      expect(bad.structuredContent).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    });

    it('list_booking_pages forwards GET /booking-pages, audited', async () => {
      const r = await createOpenResource(t, { name: 'Dr. Page', kind: 'person', time_zone: 'UTC' });
      const created = await t.request('POST', '/booking-pages', {
        key: writeKey,
        body: { slug: 'check-up', title: 'Check-up', durations_minutes: [30], resource_ids: [r] },
      });
      expect(created.statusCode, created.body).toBe(201);
      const answer = await call(writer, 'list_booking_pages', { limit: 5 });
      expect(answer.isError).toBeFalsy();
      const pages = answer.structuredContent!.booking_pages as { slug: string; url: string }[];
      expect(pages.map((page) => page.slug)).toEqual(['check-up']);
      expect(pages[0]!.url).toMatch(/\/book\/acme\/check-up$/);
      expect(answer.structuredContent).toHaveProperty('next_cursor', null);
      const audit = (await t.request('GET', '/audit-log', { query: { limit: '100' } })).json();
      const entry = (audit.entries as { action: string; details: Record<string, unknown> }[]).find(
        (e) => e.action === 'mcp.list_booking_pages',
      );
      expect(entry?.details).toMatchObject({ method: 'GET', path: '/booking-pages' });
    });

    it('answers 401 problem+json on /mcp without a key', async () => {
      const res = await fetch(`${t.publicUrl}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    });
  });
}

import { expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';

const NOW = '2026-03-16T08:00:00Z';
const RESOURCE = { name: 'Ada', kind: 'person', time_zone: 'Europe/Berlin' } as const;

type Res = { statusCode: number; headers: Record<string, unknown>; json(): any; body: string };

function expectFieldError(res: Res, status: number, code: string, field: string): { message: string } {
  expect(res.statusCode, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body.code).toBe(code);
  const error = (body.errors as { field: string; message: string }[]).find((e) => e.field === field);
  expect(error, `no error naming ${field}: ${res.body}`).toBeDefined();
  return error as { message: string };
}

const invalid = (res: Res, field: string) => expectFieldError(res, 400, 'VALIDATION_FAILED', field);

describeOnBackends(
  'input hardening',
  (t) => {
    const booking = (resourceId: string, extra: Record<string, unknown> = {}) => ({
      resource_ids: [resourceId],
      start_time: '2026-03-17T10:00:00Z',
      end_time: '2026-03-17T11:00:00Z',
      title: 'Review',
      ...extra,
    });

    async function auditCount(): Promise<number> {
      const row = await t()
        .database.db.selectFrom('audit_log')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    }

    it('refuses NUL and other control characters in bodies, queries, params and headers', async () => {
      invalid(await t().request('POST', '/resources', { body: { ...RESOURCE, name: 'A\u0000da' } }), 'name');
      const r = await createOpenResource(t(), RESOURCE);
      invalid(
        await t().request('POST', '/bookings', {
          body: booking(r, { metadata: { note: { deep: 'x\u0001' } } }),
        }),
        'metadata.note.deep',
      );
      invalid(
        await t().request('POST', '/bookings', { body: booking(r, { metadata: { 'k\u0000': 1 } }) }),
        'metadata.k\\u0000',
      );
      invalid(await t().request('GET', '/bookings', { query: { cursor: 'a\u0000b' } }), 'cursor');
      invalid(await t().request('GET', `/resources/${r}%00`), 'resource_id');
      invalid(
        await t().request('GET', '/oauth/google/callback?state=x&co%00de=1', { key: null }),
        'co\\u0000de',
      );
      invalid(
        await t().request('POST', '/resources', {
          body: RESOURCE,
          headers: { 'idempotency-key': 'k\u0000' },
        }),
        'idempotency-key',
      );
      invalid(
        await t().request('POST', '/hooks/outlook', { key: null, body: { value: [{ x: 'a\u0000' }] } }),
        'value[0].x',
      );
      // Tabs and line breaks are ordinary text.
      const ok = await t().request('POST', '/bookings', {
        body: booking(r, { description: 'line one\nline\ttwo\r\n' }),
      });
      expect(ok.statusCode, ok.body).toBe(201);
    });

    it('refuses instants outside the years 1900–9999 wherever an instant is taken', async () => {
      const r = await createOpenResource(t(), RESOURCE);
      invalid(
        await t().request('POST', '/bookings', { body: booking(r, { start_time: '0000-03-17T10:00:00Z' }) }),
        'start_time',
      );
      invalid(await t().request('GET', '/bookings', { query: { start: '1899-12-31T23:59:59Z' } }), 'start');
      invalid(
        await t().request('POST', '/freebusy', {
          body: { resource_ids: [r], start: '0000-01-01T00:00:00Z', end: '2026-03-18T00:00:00Z' },
        }),
        'start',
      );
      invalid(
        await t().request('GET', '/availability', {
          query: {
            resource_ids: r,
            start: '2026-03-16T00:00:00Z',
            end: '99999-01-01T00:00:00Z',
            duration_minutes: '30',
          },
        }),
        'end',
      );
      const edge = await t().request('GET', '/bookings', {
        query: { start: '1900-01-01T00:00:00Z', end: '9999-12-31T23:59:59Z' },
      });
      expect(edge.statusCode, edge.body).toBe(200);
    });

    it('refuses nesting deeper than 32 levels, and numbers it cannot keep exactly', async () => {
      const r = await createOpenResource(t(), RESOURCE);
      let deep: unknown = 'leaf';
      for (let i = 0; i < 40; i++) deep = { d: deep };
      const error = invalid(
        await t().request('POST', '/bookings', { body: booking(r, { metadata: deep }) }),
        'metadata.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d',
      );
      expect(error.message).toMatch(/32/);
      let shallow: unknown = 'leaf';
      for (let i = 0; i < 30; i++) shallow = [shallow];
      const ok = await t().request('POST', '/bookings', { body: booking(r, { metadata: { s: shallow } }) });
      expect(ok.statusCode, ok.body).toBe(201);
      expect(ok.json().metadata.s).toEqual(shallow);
      const huge = JSON.stringify(
        booking(r, { start_time: '2026-03-18T10:00:00Z', end_time: '2026-03-18T11:00:00Z' }),
      ).replace('"title"', '"metadata":{"n":1e999},"title"');
      invalid(await t().request('POST', '/bookings', { body: huge }), 'metadata.n');
      const inexact = huge.replace('1e999', '123456789012345678901');
      invalid(await t().request('POST', '/bookings', { body: inexact }), 'metadata.n');
    });

    it('accepts only canonical UUIDs as ids', async () => {
      const r = await createOpenResource(t(), RESOURCE);
      invalid(await t().request('GET', `/resources/urn:uuid:${r}`), 'resource_id');
      invalid(await t().request('GET', `/resources/%7B${r}%7D`), 'resource_id');
      invalid(await t().request('POST', '/bookings', { body: booking(`urn:uuid:${r}`) }), 'resource_ids[0]');
      const upper = await t().request('GET', `/resources/${r.toUpperCase()}`);
      expect(upper.statusCode, upper.body).toBe(200);
      expect(upper.json().resource_id).toBe(r);
    });

    it('converts nothing: strings are not booleans, numbers or lists', async () => {
      const r = await createOpenResource(t(), RESOURCE, { weekly: { mon: [['09:00', '10:00']] } });
      const before = await auditCount();
      const text = await t().request('POST', '/bookings', {
        body: booking(r, {
          start_time: '2026-03-22T03:00:00Z',
          end_time: '2026-03-22T04:00:00Z',
          ignore_availability: 'true',
        }),
      });
      expect(invalid(text, 'ignore_availability').message).toMatch(/boolean/);
      invalid(await t().request('POST', '/resources', { body: { ...RESOURCE, name: 123 } }), 'name');
      invalid(
        await t().request('POST', '/bookings', { body: { ...booking(r), resource_ids: r } }),
        'resource_ids',
      );
      invalid(
        await t().request('POST', '/freebusy', {
          body: { resource_ids: r, start: '2026-03-16T00:00:00Z', end: '2026-03-17T00:00:00Z' },
        }),
        'resource_ids',
      );
      expect(await auditCount()).toBe(before);
    });

    it('parses query values explicitly: limit must be a plain integer from 1 to 500', async () => {
      for (const limit of ['1e999', 'abc', '0', '501', '1.5', ' 5', '0x10', '']) {
        invalid(await t().request('GET', '/resources', { query: { limit } }), 'limit');
      }
      const page = await t().request('GET', '/resources', { query: { limit: '1' } });
      expect(page.statusCode, page.body).toBe(200);
      expect(page.json().resources).toHaveLength(1);
      invalid(await t().request('GET', '/resources?limit=1&limit=2'), 'limit');
    });

    it('takes query lists comma-separated or repeated', async () => {
      const a = await createOpenResource(t(), RESOURCE);
      const b = await createOpenResource(t(), { ...RESOURCE, name: 'Grace' });
      const window = 'start=2026-03-17T10:00:00Z&end=2026-03-17T11:00:00Z&duration_minutes=60';
      const comma = await t().request('GET', `/availability?resource_ids=${a},${b}&${window}`);
      const repeated = await t().request(
        'GET',
        `/availability?resource_ids=${a}&resource_ids=${b}&${window}`,
      );
      expect(comma.statusCode, comma.body).toBe(200);
      expect(comma.json().slots).toEqual([
        { start_time: '2026-03-17T10:00:00Z', end_time: '2026-03-17T11:00:00Z', resource_ids: [a, b] },
      ]);
      expect(repeated.json()).toEqual(comma.json());
      invalid(await t().request('GET', `/availability?resource_ids=${a},nope&${window}`), 'resource_ids[1]');
      invalid(
        await t().request('GET', `/availability?resource_ids=${a}&${window.replace('=60', '=sixty')}`),
        'duration_minutes',
      );
    });

    it('refuses forged cursors naming cursor', async () => {
      const forge = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');
      for (const cursor of [
        forge(['0000-13-45 25:61:61+00', '00000000-0000-4000-8000-000000000000']),
        forge(['2026-02-30 10:00:00+00', '00000000-0000-4000-8000-000000000000']),
        forge(['2026-02-01 10:00:00+00', 'urn:uuid:00000000-0000-4000-8000-000000000000']),
        'not-a-cursor',
      ]) {
        invalid(await t().request('GET', '/resources', { query: { cursor } }), 'cursor');
        invalid(await t().request('GET', '/bookings', { query: { cursor } }), 'cursor');
      }
    });

    it('lists the allowed values in an enum error', async () => {
      const error = invalid(
        await t().request('POST', '/resources', { body: { ...RESOURCE, kind: 'robot' } }),
        'kind',
      );
      expect(error.message).toBe('must be one of: person, room, equipment');
      const query = invalid(await t().request('GET', '/bookings', { query: { status: 'maybe' } }), 'status');
      expect(query.message).toBe('must be one of: pending, confirmed, cancelled, rejected');
    });

    it('accepts an empty body with any Content-Type where no body is taken', async () => {
      const r = await createOpenResource(t(), RESOURCE);
      const created = await t().request('POST', '/bookings', { body: booking(r) });
      expect(created.statusCode, created.body).toBe(201);
      const id = created.json().booking_id as string;
      for (const type of ['application/json', 'text/plain', 'application/x-www-form-urlencoded']) {
        const res = await t().app.inject({
          method: 'POST',
          url: `/bookings/${id}/cancel`,
          headers: { authorization: `Bearer ${t().adminKey}`, 'content-type': type },
          payload: '',
        });
        expect(res.statusCode, `${type}: ${res.body}`).toBe(200);
        expect(res.json().status).toBe('cancelled');
      }
      const gone = await t().app.inject({
        method: 'DELETE',
        url: `/resources/${r}`,
        headers: { authorization: `Bearer ${t().adminKey}`, 'content-type': 'application/json' },
        payload: '',
      });
      expect(gone.statusCode, gone.body).toBe(204);
      // A route that takes a body still needs one.
      invalid(
        await t().app.inject({
          method: 'POST',
          url: '/resources',
          headers: { authorization: `Bearer ${t().adminKey}`, 'content-type': 'application/json' },
          payload: '',
        }),
        'body',
      );
    });

    it('answers a body of another media type with 415 naming content-type, and writes nothing', async () => {
      const before = await auditCount();
      for (const [type, payload] of [
        ['text/plain', JSON.stringify(RESOURCE)],
        ['application/x-www-form-urlencoded', 'name=Ada&kind=person&time_zone=Europe%2FBerlin'],
        ['application/xml', '<resource/>'],
      ] as const) {
        const res = await t().app.inject({
          method: 'POST',
          url: '/resources',
          headers: { authorization: `Bearer ${t().adminKey}`, 'content-type': type },
          payload,
        });
        expectFieldError(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'content-type');
      }
      expect(await auditCount()).toBe(before);
    });
  },
  NOW,
);

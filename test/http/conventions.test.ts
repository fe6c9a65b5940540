import { expect, it } from 'vitest';
import { hashRequest } from '../../src/http/idempotency.js';
import { describeOnBackends } from '../support/backends.js';

const RESOURCE = { name: 'Ada', kind: 'person', time_zone: 'Europe/Berlin' };

function expectProblem(
  res: { statusCode: number; headers: Record<string, unknown>; json(): any },
  status: number,
  code: string,
) {
  expect(res.statusCode).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body).toMatchObject({ status, code });
  expect(typeof body.type).toBe('string');
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  return body;
}

describeOnBackends('authentication and scopes', (t) => {
  it('answers 401 without a key, with a malformed header and with an unknown key', async () => {
    expectProblem(await t().request('GET', '/resources', { key: null }), 401, 'UNAUTHENTICATED');
    expectProblem(
      await t().request('GET', '/resources', { key: null, headers: { authorization: 'Basic abc' } }),
      401,
      'UNAUTHENTICATED',
    );
    expectProblem(
      await t().request('GET', '/resources', { key: 'sk_not_a_real_key' }),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('checks the key before the body, so an anonymous caller gets 401 rather than 400', async () => {
    expectProblem(
      await t().request('POST', '/resources', { key: null, body: '{broken' }),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('lets read keys read but not write, and keeps API keys to admin', async () => {
    const read = await t().keyFor('acme', ['read']);
    expect((await t().request('GET', '/resources', { key: read })).statusCode).toBe(200);
    expectProblem(await t().request('POST', '/resources', { key: read, body: RESOURCE }), 403, 'FORBIDDEN');
    const write = await t().keyFor('acme', ['write']);
    expect((await t().request('POST', '/resources', { key: write, body: RESOURCE })).statusCode).toBe(201);
    expect((await t().request('GET', '/resources', { key: write })).statusCode).toBe(200);
    expectProblem(await t().request('GET', '/api-keys', { key: write }), 403, 'FORBIDDEN');
    expectProblem(await t().request('GET', '/audit-log', { key: write }), 403, 'FORBIDDEN');
  });

  it('shows a new key once, stores only its hash, and revokes it at once', async () => {
    const created = await t().request('POST', '/api-keys', { body: { name: 'ci', scopes: ['read'] } });
    expect(created.statusCode).toBe(201);
    const { key, api_key_id, scopes } = created.json();
    expect(key).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
    expect(scopes).toEqual(['read']);
    const stored = await t()
      .database.db.selectFrom('api_keys')
      .selectAll()
      .where('api_key_id', '=', api_key_id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(key);
    const listed = (await t().request('GET', '/api-keys')).json();
    expect(JSON.stringify(listed)).not.toContain(key);
    expect(listed.api_keys.some((k: { api_key_id: string }) => k.api_key_id === api_key_id)).toBe(true);

    expect((await t().request('GET', '/resources', { key })).statusCode).toBe(200);
    expect((await t().request('DELETE', `/api-keys/${api_key_id}`)).statusCode).toBe(204);
    expectProblem(await t().request('GET', '/resources', { key }), 401, 'UNAUTHENTICATED');
  });

  it('never shows one organization the objects of another: they are 404, not 403', async () => {
    const other = await t().keyFor('globex', ['admin']);
    const theirs = (await t().request('POST', '/resources', { key: other, body: RESOURCE })).json();
    const booking = await t().request('POST', '/bookings', {
      key: other,
      body: {
        resource_ids: [theirs.resource_id],
        start_time: '2026-05-19T10:00:00Z',
        end_time: '2026-05-19T10:30:00Z',
        title: 'Theirs',
      },
    });
    expect(booking.statusCode).toBe(201);
    const bookingId = booking.json().booking_id;

    expectProblem(await t().request('GET', `/resources/${theirs.resource_id}`), 404, 'RESOURCE_NOT_FOUND');
    expectProblem(
      await t().request('PATCH', `/resources/${theirs.resource_id}`, { body: { name: 'x' } }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectProblem(await t().request('DELETE', `/resources/${theirs.resource_id}`), 404, 'RESOURCE_NOT_FOUND');
    expectProblem(
      await t().request('GET', `/resources/${theirs.resource_id}/schedule`),
      404,
      'RESOURCE_NOT_FOUND',
    );
    expectProblem(await t().request('GET', `/bookings/${bookingId}`), 404, 'BOOKING_NOT_FOUND');
    expectProblem(
      await t().request('POST', `/bookings/${bookingId}/cancel`, { body: {} }),
      404,
      'BOOKING_NOT_FOUND',
    );
    expectProblem(
      await t().request('POST', '/bookings', {
        body: {
          resource_ids: [theirs.resource_id],
          start_time: '2026-05-19T11:00:00Z',
          end_time: '2026-05-19T11:30:00Z',
          title: 'x',
        },
      }),
      404,
      'RESOURCE_NOT_FOUND',
    );
    const availability = await t().request('GET', '/availability', {
      query: {
        resource_ids: theirs.resource_id,
        start: '2026-05-19T00:00:00Z',
        end: '2026-05-20T00:00:00Z',
        duration_minutes: '30',
      },
    });
    expectProblem(availability, 404, 'RESOURCE_NOT_FOUND');

    const mine = (await t().request('GET', '/resources?limit=500')).json();
    expect(mine.resources.some((r: { resource_id: string }) => r.resource_id === theirs.resource_id)).toBe(
      false,
    );
    const myBookings = (await t().request('GET', '/bookings?limit=500')).json();
    expect(myBookings.bookings.some((b: { booking_id: string }) => b.booking_id === bookingId)).toBe(false);
    const myAudit = (await t().request('GET', '/audit-log?limit=500')).json();
    expect(JSON.stringify(myAudit)).not.toContain(theirs.resource_id);
    const theirKeys = (await t().request('GET', '/api-keys', { key: other })).json();
    const myKeys = (await t().request('GET', '/api-keys')).json();
    const theirIds = new Set(theirKeys.api_keys.map((k: { api_key_id: string }) => k.api_key_id));
    expect(myKeys.api_keys.some((k: { api_key_id: string }) => theirIds.has(k.api_key_id))).toBe(false);
  });
});

describeOnBackends('bad input gets a clear error and changes nothing', (t) => {
  async function countRows() {
    const db = t().database.db;
    const [resources, bookings, audit] = await Promise.all([
      db
        .selectFrom('resources')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow(),
      db
        .selectFrom('bookings')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow(),
      db
        .selectFrom('audit_log')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow(),
    ]);
    return [Number(resources.n), Number(bookings.n), Number(audit.n)];
  }

  async function rejected(
    method: string,
    url: string,
    body: unknown,
    status: number,
    field: string,
    code = 'VALIDATION_FAILED',
  ) {
    const before = await countRows();
    const res = await t().request(method, url, { body });
    const problem = expectProblem(res, status, code);
    expect(problem.errors?.map((e: { field: string }) => e.field)).toContain(field);
    expect(await countRows()).toEqual(before);
    return problem;
  }

  let resourceId = '';
  const booking = (over: Record<string, unknown>) => ({
    resource_ids: [resourceId],
    start_time: '2026-05-19T09:00:00Z',
    end_time: '2026-05-19T09:30:00Z',
    title: 'Checkup',
    ...over,
  });

  it('sets up a resource', async () => {
    resourceId = (await t().request('POST', '/resources', { body: RESOURCE })).json().resource_id;
    expect(resourceId).toBeTruthy();
  });

  it('refuses malformed JSON', async () => {
    await rejected('POST', '/resources', '{"name": "Ada",', 400, 'body');
  });

  it('refuses unknown fields, naming them', async () => {
    await rejected('POST', '/resources', { ...RESOURCE, colour: 'red' }, 400, 'colour');
    await rejected(
      'POST',
      '/bookings',
      booking({ attendees: [{ email: 'a@example.com', phone: '1' }] }),
      400,
      'attendees[0].phone',
    );
  });

  it('refuses missing fields, naming them', async () => {
    await rejected('POST', '/resources', { name: 'x', kind: 'room' }, 400, 'time_zone');
  });

  it('refuses times without an offset', async () => {
    await rejected('POST', '/bookings', booking({ start_time: '2026-05-19T09:00:00' }), 400, 'start_time');
    const res = await t().request('GET', '/availability', {
      query: {
        resource_ids: resourceId,
        start: '2026-05-19T00:00:00',
        end: '2026-05-20T00:00:00Z',
        duration_minutes: '30',
      },
    });
    expect(expectProblem(res, 400, 'VALIDATION_FAILED').errors[0].field).toBe('start');
  });

  it('refuses an end that is not after the start', async () => {
    await rejected('POST', '/bookings', booking({ end_time: '2026-05-19T09:00:00Z' }), 400, 'end_time');
    await rejected('POST', '/bookings', booking({ end_time: '2026-05-19T08:00:00Z' }), 400, 'end_time');
    const res = await t().request('GET', '/availability', {
      query: {
        resource_ids: resourceId,
        start: '2026-05-20T00:00:00Z',
        end: '2026-05-19T00:00:00Z',
        duration_minutes: '30',
      },
    });
    expect(expectProblem(res, 400, 'VALIDATION_FAILED').errors[0].field).toBe('end');
  });

  it('refuses unknown time zones', async () => {
    await rejected('POST', '/resources', { ...RESOURCE, time_zone: 'Mars/Olympus_Mons' }, 400, 'time_zone');
    await rejected(
      'PUT',
      `/resources/${resourceId}/schedule`,
      { time_zone: 'Europe/Berlinn' },
      400,
      'time_zone',
    );
    const res = await t().request('GET', '/availability', {
      query: {
        resource_ids: resourceId,
        start: '2026-05-19T00:00:00Z',
        end: '2026-05-20T00:00:00Z',
        duration_minutes: '30',
        time_zone: 'Nowhere/Land',
      },
    });
    expect(expectProblem(res, 400, 'VALIDATION_FAILED').errors[0].field).toBe('time_zone');
  });

  it('refuses windows over 92 days', async () => {
    const query = {
      resource_ids: resourceId,
      start: '2026-05-19T00:00:00Z',
      end: '2026-08-20T00:00:01Z',
      duration_minutes: '30',
    };
    expect(
      expectProblem(await t().request('GET', '/availability', { query }), 400, 'VALIDATION_FAILED').errors[0]
        .field,
    ).toBe('end');
    const ok = await t().request('GET', '/availability', {
      query: { ...query, end: '2026-08-19T00:00:00Z' },
    });
    expect(ok.statusCode).toBe(200);
    await rejected(
      'POST',
      '/freebusy',
      { resource_ids: [resourceId], start: '2026-01-01T00:00:00Z', end: '2026-06-01T00:00:00Z' },
      400,
      'end',
    );
  });

  it('refuses zero and negative durations', async () => {
    for (const duration of ['0', '-30', '1.5', 'thirty']) {
      const res = await t().request('GET', '/availability', {
        query: {
          resource_ids: resourceId,
          start: '2026-05-19T00:00:00Z',
          end: '2026-05-20T00:00:00Z',
          duration_minutes: duration,
        },
      });
      expect(expectProblem(res, 400, 'VALIDATION_FAILED').errors[0].field).toBe('duration_minutes');
    }
  });

  it('refuses unknown and malformed ids', async () => {
    await rejected(
      'POST',
      '/bookings',
      booking({ resource_ids: [resourceId, '00000000-0000-4000-8000-000000000000'] }),
      404,
      'resource_ids[1]',
      'RESOURCE_NOT_FOUND',
    );
    await rejected('POST', '/bookings', booking({ resource_ids: ['not-a-uuid'] }), 400, 'resource_ids[0]');
    expectProblem(
      await t().request('GET', '/bookings/00000000-0000-4000-8000-000000000000'),
      404,
      'BOOKING_NOT_FOUND',
    );
    expectProblem(await t().request('GET', '/bookings/nope'), 400, 'VALIDATION_FAILED');
    const res = await t().request('GET', '/availability', {
      query: {
        resource_ids: `${resourceId},zzz`,
        start: '2026-05-19T00:00:00Z',
        end: '2026-05-20T00:00:00Z',
        duration_minutes: '30',
      },
    });
    expect(expectProblem(res, 400, 'VALIDATION_FAILED').errors[0].field).toBe('resource_ids[1]');
  });

  it('refuses bodies over 1 MiB with 413', async () => {
    const huge = JSON.stringify({ ...RESOURCE, name: 'x'.repeat(1024 * 1024) });
    await rejected('POST', '/resources', huge, 413, 'body', 'PAYLOAD_TOO_LARGE');
  });

  it('refuses a cursor it did not issue', async () => {
    const res = await t().request('GET', '/resources?cursor=bm9wZQ');
    expect(expectProblem(res, 400, 'VALIDATION_FAILED').errors[0].field).toBe('cursor');
  });

  it('refuses a limit over 500', async () => {
    const res = await t().request('GET', '/resources?limit=501');
    expect(expectProblem(res, 400, 'VALIDATION_FAILED').errors[0].field).toBe('limit');
  });

  it('answers unknown routes with a problem+json 404', async () => {
    expectProblem(await t().request('GET', '/nowhere'), 404, 'NOT_FOUND');
  });
});

describeOnBackends('idempotency keys', (t) => {
  it('replays the first response, status and body, for the same key and body', async () => {
    const headers = { 'idempotency-key': 'create-ada-1' };
    const first = await t().request('POST', '/resources', { body: RESOURCE, headers });
    expect(first.statusCode).toBe(201);
    const second = await t().request('POST', '/resources', { body: { ...RESOURCE }, headers });
    expect(second.statusCode).toBe(201);
    expect(second.json()).toEqual(first.json());
    expect(second.headers['idempotent-replayed']).toBe('true');
    const count = await t()
      .database.db.selectFrom('resources')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('name', '=', RESOURCE.name)
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1);
  });

  it('answers 422 IDEMPOTENCY_KEY_REUSED when the same key comes with another body', async () => {
    const headers = { 'idempotency-key': 'create-2' };
    expect(
      (await t().request('POST', '/resources', { body: { ...RESOURCE, name: 'A' }, headers })).statusCode,
    ).toBe(201);
    expectProblem(
      await t().request('POST', '/resources', { body: { ...RESOURCE, name: 'B' }, headers }),
      422,
      'IDEMPOTENCY_KEY_REUSED',
    );
  });

  it('answers 409 IDEMPOTENCY_IN_PROGRESS while the first request still runs', async () => {
    const body = { ...RESOURCE, name: 'C' };
    // The claim a request makes while it runs, as another process would have left it a moment ago.
    await t()
      .database.db.insertInto('idempotency_keys')
      .values({
        organization_id: t().organizationId,
        idempotency_key: 'running',
        request_hash: hashRequest('POST', '/resources', body),
        state: 'in_progress',
        created_at: new Date(t().clock.now - 1000),
        expires_at: new Date(t().clock.now + 86_400_000),
      })
      .execute();
    const headers = { 'idempotency-key': 'running' };
    expectProblem(await t().request('POST', '/resources', { body, headers }), 409, 'IDEMPOTENCY_IN_PROGRESS');
    // A claim whose process died is taken over once it is old enough, so the client is not stuck for a day.
    t().clock.advance(10 * 60_000);
    expect((await t().request('POST', '/resources', { body, headers })).statusCode).toBe(201);
  });

  it('runs two simultaneous requests with one key only once', async () => {
    const headers = { 'idempotency-key': 'concurrent-1' };
    const body = { ...RESOURCE, name: 'Concurrent' };
    const [a, b] = await Promise.all([
      t().request('POST', '/resources', { body, headers }),
      t().request('POST', '/resources', { body, headers }),
    ]);
    const created = [a, b].filter((r) => r.statusCode === 201);
    const busy = [a, b].filter((r) => r.statusCode === 409);
    expect(created.length + busy.length).toBe(2);
    if (created.length === 2) expect(created[0]!.json()).toEqual(created[1]!.json());
    for (const res of busy) expectProblem(res, 409, 'IDEMPOTENCY_IN_PROGRESS');
    const count = await t()
      .database.db.selectFrom('resources')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('name', '=', 'Concurrent')
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1);
  });

  it('keys are per organization: another organization may use the same key', async () => {
    const other = await t().keyFor('initech', ['write']);
    const headers = { 'idempotency-key': 'shared-key' };
    const mine = await t().request('POST', '/resources', { body: RESOURCE, headers });
    const theirs = await t().request('POST', '/resources', { key: other, body: RESOURCE, headers });
    expect(theirs.statusCode).toBe(201);
    expect(theirs.json().resource_id).not.toBe(mine.json().resource_id);
  });

  it('replays a refusal too, so a retried conflicting booking gets the same 409', async () => {
    const resource = (await t().request('POST', '/resources', { body: RESOURCE })).json();
    const body = {
      resource_ids: [resource.resource_id],
      start_time: '2026-05-19T10:00:00Z',
      end_time: '2026-05-19T11:00:00Z',
      title: 'a',
    };
    expect((await t().request('POST', '/bookings', { body })).statusCode).toBe(201);
    const headers = { 'idempotency-key': 'conflict-1' };
    const first = await t().request('POST', '/bookings', { body, headers });
    expectProblem(first, 409, 'SLOT_UNAVAILABLE');
    const replay = await t().request('POST', '/bookings', { body, headers });
    expect(replay.statusCode).toBe(409);
    expect(replay.json()).toEqual(first.json());
  });

  it('makes a new claim once the old one has expired after 24 hours', async () => {
    const headers = { 'idempotency-key': 'expiring' };
    const first = (
      await t().request('POST', '/resources', { body: { ...RESOURCE, name: 'E' }, headers })
    ).json();
    t().clock.advance(23 * 3_600_000);
    expect(
      (await t().request('POST', '/resources', { body: { ...RESOURCE, name: 'E' }, headers })).json(),
    ).toEqual(first);
    t().clock.advance(2 * 3_600_000);
    const later = await t().request('POST', '/resources', { body: { ...RESOURCE, name: 'E' }, headers });
    expect(later.statusCode).toBe(201);
    expect(later.json().resource_id).not.toBe(first.resource_id);
  });
});

describeOnBackends('audit log', (t) => {
  it('records every change with actor, action and target, newest first', async () => {
    const resource = (await t().request('POST', '/resources', { body: RESOURCE })).json();
    await t().request('PATCH', `/resources/${resource.resource_id}`, { body: { name: 'Ada L.' } });
    await t().request('PUT', `/resources/${resource.resource_id}/schedule`, {
      body: { weekly: { mon: [['09:00', '17:00']] } },
    });
    const booking = (
      await t().request('POST', '/bookings', {
        body: {
          resource_ids: [resource.resource_id],
          start_time: '2026-05-18T08:00:00Z',
          end_time: '2026-05-18T08:30:00Z',
          title: 'x',
        },
      })
    ).json();
    await t().request('POST', `/bookings/${booking.booking_id}/cancel`, { body: { reason: 'ill' } });
    await t().request('DELETE', `/resources/${resource.resource_id}`);

    const log = (await t().request('GET', '/audit-log?limit=500')).json();
    const actions = log.entries
      .filter(
        (e: { target_id: string }) =>
          e.target_id === resource.resource_id || e.target_id === booking.booking_id,
      )
      .map((e: { action: string }) => e.action);
    expect(actions).toEqual([
      'resource.deleted',
      'booking.cancelled',
      'booking.created',
      'schedule.updated',
      'resource.updated',
      'resource.created',
    ]);
    const entry = log.entries.find((e: { action: string }) => e.action === 'booking.cancelled');
    expect(entry).toMatchObject({
      target_type: 'booking',
      target_id: booking.booking_id,
      details: { reason: 'ill' },
    });
    expect(entry.actor).toMatch(/^api_key:[0-9a-f-]{36}$/);
    expect(Date.parse(entry.at)).not.toBeNaN();
  });

  it('records nothing for a refused change', async () => {
    const before = (await t().request('GET', '/audit-log?limit=500')).json().entries.length;
    await t().request('POST', '/resources', { body: { ...RESOURCE, time_zone: 'Bad/Zone' } });
    expect((await t().request('GET', '/audit-log?limit=500')).json().entries.length).toBe(before);
  });

  it('pages newest first without repeats', async () => {
    const all = (await t().request('GET', '/audit-log?limit=500')).json().entries;
    const paged: unknown[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const res = await t().request('GET', `/audit-log?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      const page: { entries: unknown[]; next_cursor: string | null } = res.json();
      paged.push(...page.entries);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    expect(paged).toEqual(all);
  });
});

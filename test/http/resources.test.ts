import { expect, it } from 'vitest';
import { patchSchedule, putSchedule } from '../../src/services/schedules.js';
import { describeOnBackends } from '../support/backends.js';

describeOnBackends('resources and schedules', (t) => {
  it('creates a resource with a UUID id and returns it as stored', async () => {
    const res = await t().request('POST', '/resources', {
      body: { name: 'Room 1', kind: 'room', time_zone: 'Asia/Kolkata', email: 'room1@example.com' },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.resource_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body).toMatchObject({
      name: 'Room 1',
      kind: 'room',
      time_zone: 'Asia/Kolkata',
      email: 'room1@example.com',
    });
    expect(Date.parse(body.created_at)).not.toBeNaN();
    const again = await t().request('GET', `/resources/${body.resource_id}`);
    expect(again.json()).toEqual(body);
  });

  it('updates only the fields a PATCH names', async () => {
    const created = (
      await t().request('POST', '/resources', { body: { name: 'Bo', kind: 'person', time_zone: 'UTC' } })
    ).json();
    const res = await t().request('PATCH', `/resources/${created.resource_id}`, {
      body: { name: 'Bo Diddley' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'Bo Diddley', kind: 'person', time_zone: 'UTC' });
  });

  it('deletes a resource so it is gone from reads and lists', async () => {
    const created = (
      await t().request('POST', '/resources', { body: { name: 'Old', kind: 'equipment', time_zone: 'UTC' } })
    ).json();
    expect((await t().request('DELETE', `/resources/${created.resource_id}`)).statusCode).toBe(204);
    expect((await t().request('GET', `/resources/${created.resource_id}`)).statusCode).toBe(404);
    const list = (await t().request('GET', '/resources?limit=500')).json();
    expect(list.resources.map((r: { resource_id: string }) => r.resource_id)).not.toContain(
      created.resource_id,
    );
    expect((await t().request('DELETE', `/resources/${created.resource_id}`)).statusCode).toBe(404);
  });

  it('pages through resources with limit and cursor, each once, in creation order', async () => {
    const key = await t().keyFor('paging-org', ['write']);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await t().request('POST', '/resources', {
        key,
        body: { name: `R${i}`, kind: 'room', time_zone: 'UTC' },
      });
      ids.push(res.json().resource_id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await t().request('GET', `/resources?limit=3${cursor ? `&cursor=${cursor}` : ''}`, { key });
      expect(res.statusCode).toBe(200);
      const page = res.json();
      expect(page.resources.length).toBeLessThanOrEqual(3);
      seen.push(...page.resources.map((r: { resource_id: string }) => r.resource_id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
  });

  it('gives Mon–Fri 09:00–17:00 in the resource zone until a schedule is set', async () => {
    const created = (
      await t().request('POST', '/resources', {
        body: { name: 'D', kind: 'person', time_zone: 'Europe/Berlin' },
      })
    ).json();
    const res = await t().request('GET', `/resources/${created.resource_id}/schedule`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      time_zone: 'Europe/Berlin',
      is_default: true,
      weekly: { mon: [['09:00', '17:00']], fri: [['09:00', '17:00']] },
    });
    expect(res.json().weekly.sat).toBeUndefined();
  });

  it('stores a schedule with PUT and reads it back', async () => {
    const created = (
      await t().request('POST', '/resources', { body: { name: 'S', kind: 'person', time_zone: 'UTC' } })
    ).json();
    const schedule = {
      time_zone: 'America/New_York',
      weekly: {
        mon: [
          ['09:00', '12:00'],
          ['13:00', '17:00'],
        ],
        tue: [['09:00', '17:00']],
      },
      overrides: [{ date: '2026-12-24', intervals: [] }],
      buffer_before_minutes: 0,
      buffer_after_minutes: 10,
      minimum_notice_minutes: 60,
      booking_horizon_days: 90,
    };
    const put = await t().request('PUT', `/resources/${created.resource_id}/schedule`, { body: schedule });
    expect(put.statusCode).toBe(200);
    const got = (await t().request('GET', `/resources/${created.resource_id}/schedule`)).json();
    expect(got).toEqual({ ...schedule, resource_id: created.resource_id, is_default: false });
  });

  it('refuses a schedule whose intervals overlap, naming the interval', async () => {
    const created = (
      await t().request('POST', '/resources', { body: { name: 'S2', kind: 'person', time_zone: 'UTC' } })
    ).json();
    const res = await t().request('PUT', `/resources/${created.resource_id}/schedule`, {
      body: {
        weekly: {
          wed: [
            ['09:00', '12:00'],
            ['11:00', '13:00'],
          ],
        },
      },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors[0].field).toBe('weekly.wed[1]');
    const still = (await t().request('GET', `/resources/${created.resource_id}/schedule`)).json();
    expect(still.is_default).toBe(true);
  });

  it('refuses wall times that are not HH:MM and intervals that end before they start', async () => {
    const created = (
      await t().request('POST', '/resources', { body: { name: 'S3', kind: 'person', time_zone: 'UTC' } })
    ).json();
    const badTime = await t().request('PUT', `/resources/${created.resource_id}/schedule`, {
      body: { weekly: { mon: [['9am', '17:00']] } },
    });
    expect(badTime.statusCode).toBe(400);
    expect(badTime.json().errors[0].field).toBe('weekly.mon[0][0]');
    const backwards = await t().request('PUT', `/resources/${created.resource_id}/schedule`, {
      body: { weekly: { mon: [['17:00', '09:00']] } },
    });
    expect(backwards.statusCode).toBe(400);
    expect(backwards.json().errors[0].field).toBe('weekly.mon[0]');
  });

  it('refuses a PUT without weekly, naming it, and leaves the stored hours alone', async () => {
    const created = (
      await t().request('POST', '/resources', { body: { name: 'S4', kind: 'person', time_zone: 'UTC' } })
    ).json();
    const url = `/resources/${created.resource_id}/schedule`;
    const weekly = { tue: [['10:00', '11:00']] };
    expect((await t().request('PUT', url, { body: { weekly } })).statusCode).toBe(200);
    const partial = await t().request('PUT', url, { body: { buffer_after_minutes: 5 } });
    expect(partial.statusCode).toBe(400);
    expect(partial.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(partial.json().errors.map((error: { field: string }) => error.field)).toContain('weekly');
    const still = (await t().request('GET', url)).json();
    expect(still).toMatchObject({ weekly, buffer_after_minutes: 0 });
  });

  it('PATCH changes only the fields given, validates like PUT and is audited', async () => {
    const created = (
      await t().request('POST', '/resources', {
        body: { name: 'S5', kind: 'room', time_zone: 'Europe/Berlin' },
      })
    ).json();
    const url = `/resources/${created.resource_id}/schedule`;
    // On a resource without a schedule, PATCH starts from the default one.
    const first = await t().request('PATCH', url, { body: { buffer_before_minutes: 15 } });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({
      time_zone: 'Europe/Berlin',
      weekly: { mon: [['09:00', '17:00']], fri: [['09:00', '17:00']] },
      buffer_before_minutes: 15,
      is_default: false,
    });
    const weekly = { sat: [['08:00', '12:00']] };
    const overrides = [{ date: '2026-12-24', intervals: [] }];
    expect(
      (await t().request('PUT', url, { body: { weekly, overrides, minimum_notice_minutes: 30 } })).statusCode,
    ).toBe(200);
    const patched = await t().request('PATCH', url, { body: { booking_horizon_days: 30, time_zone: 'UTC' } });
    expect(patched.statusCode, patched.body).toBe(200);
    const expected = {
      resource_id: created.resource_id,
      time_zone: 'UTC',
      weekly,
      overrides,
      buffer_before_minutes: 0,
      buffer_after_minutes: 0,
      minimum_notice_minutes: 30,
      booking_horizon_days: 30,
      is_default: false,
    };
    expect(patched.json()).toEqual(expected);
    expect((await t().request('GET', url)).json()).toEqual(expected);

    const overlapping = await t().request('PATCH', url, {
      body: {
        weekly: {
          sat: [
            ['08:00', '12:00'],
            ['11:00', '13:00'],
          ],
        },
      },
    });
    expect(overlapping.statusCode).toBe(400);
    expect(overlapping.json().errors[0].field).toBe('weekly.sat[1]');
    const unknown = await t().request('PATCH', url, { body: { weekly_hours: {} } });
    expect(unknown.statusCode).toBe(400);
    expect((await t().request('GET', url)).json()).toEqual(expected);

    const audit = await t()
      .database.db.selectFrom('audit_log')
      .select(['action'])
      .where('target_id', '=', created.resource_id)
      .where('action', '=', 'schedule.updated')
      .execute();
    expect(audit).toHaveLength(3);
  });

  it('accepts the time zone aliases IANA keeps and stores the canonical name, through the API', async () => {
    const created = await t().request('POST', '/resources', {
      body: { name: 'Alias', kind: 'person', time_zone: 'US/Eastern' },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().time_zone).toBe('America/New_York');
    const id = created.json().resource_id as string;
    const patched = await t().request('PATCH', `/resources/${id}`, {
      body: { time_zone: 'america/new_york' },
    });
    expect(patched.json().time_zone).toBe('America/New_York');
    const schedule = await t().request('PATCH', `/resources/${id}/schedule`, { body: { time_zone: 'GMT' } });
    expect(schedule.statusCode, schedule.body).toBe(200);
    expect(schedule.json().time_zone).toBe('UTC');
    const offset = await t().request('POST', '/resources', {
      body: { name: 'Offset', kind: 'person', time_zone: '+02:00' },
    });
    expect(offset.statusCode).toBe(400);
    expect(offset.json().errors[0].field).toBe('time_zone');
  });

  it('a schedule stores its zone under the canonical IANA name when given an alias', async () => {
    const created = (
      await t().request('POST', '/resources', { body: { name: 'S6', kind: 'room', time_zone: 'UTC' } })
    ).json();
    const actor = { organizationId: t().organizationId, label: 'test', scopes: ['admin'] as const };
    const deps = { db: t().database.db, clock: () => t().clock.now };
    const put = await putSchedule(deps, actor, created.resource_id, {
      time_zone: 'US/Eastern',
      weekly: { mon: [['09:00', '17:00']] },
    });
    expect(put.time_zone).toBe('America/New_York');
    const patched = await patchSchedule(deps, actor, created.resource_id, { time_zone: 'GMT' });
    expect(patched.time_zone).toBe('UTC');
    expect((await t().request('GET', `/resources/${created.resource_id}/schedule`)).json().time_zone).toBe(
      'UTC',
    );
  });
});

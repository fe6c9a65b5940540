import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requestSync } from '../../src/calendar/store/watches.js';
import { syncConnection } from '../../src/calendar/engine/sync.js';
import { describeOnBackends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { gate } from '../support/gate.js';

/** A feed server on 127.0.0.1 that answers conditional GETs and counts what it was asked. */
function feedServer() {
  const state = {
    body: '',
    etag: '"v1"',
    requests: 0,
    conditional: 0,
    url: '',
    server: undefined as http.Server | undefined,
  };
  state.server = http.createServer((request, response) => {
    state.requests++;
    if (request.headers['if-none-match'] === state.etag) {
      state.conditional++;
      response.writeHead(304, { etag: state.etag }).end();
      return;
    }
    response
      .writeHead(200, { 'content-type': 'text/calendar; charset=utf-8', etag: state.etag })
      .end(state.body);
  });
  return state;
}

function feed(events: { uid: string; start: string; end: string; summary: string; extra?: string[] }[]) {
  return [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Example//Holidays//EN',
    'X-WR-TIMEZONE:Europe/Berlin',
    ...events.flatMap((event) => [
      'BEGIN:VEVENT',
      `UID:${event.uid}`,
      'DTSTAMP:20260501T000000Z',
      `DTSTART${event.start}`,
      `DTEND${event.end}`,
      `SUMMARY:${event.summary}`,
      ...(event.extra ?? []),
      'END:VEVENT',
    ]),
    'END:VCALENDAR',
    '',
  ].join('\r\n');
}

describeOnBackends('calendar connections through the API (ICS feeds)', (t) => {
  const server = feedServer();
  let resourceId: string;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.server!.listen(0, '127.0.0.1', resolve));
    server.url = `http://127.0.0.1:${(server.server!.address() as AddressInfo).port}/holidays.ics`;
    server.body = feed([
      // Floating times in a feed whose X-WR-TIMEZONE is Berlin: 10:00 Berlin is 08:00Z in summer.
      { uid: 'team-day', start: ':20260520T100000', end: ':20260520T120000', summary: 'Team day' },
      { uid: 'holiday', start: ';VALUE=DATE:20260525', end: ';VALUE=DATE:20260526', summary: 'Whit Monday' },
      {
        uid: 'standup',
        start: ';TZID=Europe/Berlin:20260518T090000',
        end: ';TZID=Europe/Berlin:20260518T091500',
        summary: 'Standup',
        extra: ['RRULE:FREQ=DAILY;COUNT=5', 'EXDATE;TZID=Europe/Berlin:20260520T090000'],
      },
    ]);
    resourceId = await createOpenResource(t(), { name: 'Ana', kind: 'person', time_zone: 'Europe/Berlin' });
  });
  afterAll(() => new Promise<void>((resolve) => server.server!.close(() => resolve())));

  let connectionId: string;
  let calendarId: string;

  it('connects an ICS feed read-only; the URL, which may hold a secret, is not shown or stored in clear', async () => {
    const response = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: resourceId, url: server.url },
    });
    expect(response.statusCode, response.body).toBe(201);
    const connection = response.json();
    expect(connection).toMatchObject({
      provider: 'ics',
      resource_id: resourceId,
      status: 'active',
      sync: {
        direction: 'pull',
        frequency_minutes: 15,
        conflict_policy: 'sched_wins',
        blocks_availability: true,
      },
      last_synced_at: null,
      last_error: null,
    });
    expect(connection.calendar_id).toMatch(/^ics_[0-9a-f]{24}$/);
    expect(JSON.stringify(connection)).not.toContain('holidays.ics');
    connectionId = connection.connection_id;
    calendarId = connection.calendar_id;
    const row = await t()
      .database.db.selectFrom('calendar_connections')
      .select(['credentials_sealed', 'settings'])
      .where('connection_id', '=', connectionId)
      .executeTakeFirstOrThrow();
    expect(`${row.credentials_sealed} ${JSON.stringify(row.settings)}`).not.toContain('holidays.ics');
  });

  it('refuses a two-way ICS connection, naming sync.direction', async () => {
    const response = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: resourceId, url: server.url, sync: { direction: 'two_way' } },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([
      { field: 'sync.direction', message: expect.stringMatching(/read-only/) },
    ]);
  });

  it('refuses a URL towards an internal address, naming url, and a missing url', async () => {
    const internal = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: resourceId, url: 'http://10.0.0.1/feed.ics' },
    });
    expect(internal.statusCode).toBe(400);
    expect(internal.json().errors[0]).toMatchObject({ field: 'url' });
    const missing = await t().request('POST', '/calendars/caldav/connect', {
      body: { resource_id: resourceId, url: 'http://127.0.0.1:1/' },
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().errors.map((error: { field: string }) => error.field)).toEqual([
      'username',
      'password',
    ]);
  });

  it('syncs with the contract’s message and stats, then asks conditionally and finds nothing new', async () => {
    const first = await t().request('POST', `/calendars/ics/${calendarId}/sync`);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toEqual({
      message: 'ICS Feed synchronized successfully.',
      stats: { fetched: 3, created: 3, updated: 0, deleted: 0, pushed: 0, conflicts: 0 },
    });
    const before = server.conditional;
    const second = await t().request('POST', `/calendars/ics/${connectionId}/sync`);
    expect(second.json().stats).toMatchObject({ fetched: 0, created: 0, deleted: 0 });
    expect(server.conditional).toBe(before + 1);
    const shown = await t().request('GET', `/calendars/ics/${calendarId}`);
    expect(shown.json().last_synced_at).toBe('2026-05-18T06:00:00.000Z');
  });

  it('lists events with series expanded, floating times read in X-WR-TIMEZONE and all-day in the resource zone', async () => {
    const response = await t().request('GET', `/calendars/ics/${calendarId}/events`, {
      query: { start: '2026-05-18T00:00:00Z', end: '2026-05-27T00:00:00Z' },
    });
    const events = response.json().events as Record<string, unknown>[];
    const standups = events.filter((event) => event.title === 'Standup');
    expect(standups.map((event) => event.start_time)).toEqual([
      '2026-05-18T07:00:00Z',
      '2026-05-19T07:00:00Z',
      '2026-05-21T07:00:00Z',
      '2026-05-22T07:00:00Z',
    ]);
    expect(new Set(standups.map((event) => event.recurring_event_id)).size).toBe(1);
    expect(new Set(standups.map((event) => event.event_id)).size).toBe(4);
    expect(events.find((event) => event.title === 'Team day')).toMatchObject({
      start_time: '2026-05-20T08:00:00Z',
      end_time: '2026-05-20T10:00:00Z',
      all_day: false,
      recurring_event_id: null,
    });
    expect(events.find((event) => event.title === 'Whit Monday')).toMatchObject({
      start_time: '2026-05-24T22:00:00Z',
      end_time: '2026-05-25T22:00:00Z',
      all_day: true,
    });
  });

  it('feed events block availability; with blocks_availability off they do not', async () => {
    const query = {
      resource_ids: resourceId,
      start: '2026-05-20T07:00:00Z',
      end: '2026-05-20T11:00:00Z',
      duration_minutes: '60',
      interval_minutes: '15',
    };
    const blocked = await t().request('GET', '/availability', { query });
    expect(blocked.json().slots.map((slot: { start_time: string }) => slot.start_time)).toEqual([
      '2026-05-20T07:00:00Z',
      '2026-05-20T10:00:00Z',
    ]);
    const patched = await t().request('PATCH', `/calendars/ics/${calendarId}`, {
      body: { sync: { blocks_availability: false } },
    });
    expect(patched.json().sync.blocks_availability).toBe(false);
    const open = await t().request('GET', '/availability', { query });
    expect(open.json().slots).toHaveLength(13);
    await t().request('PATCH', `/calendars/ics/${calendarId}`, {
      body: { sync: { blocks_availability: true } },
    });
  });

  it('a removed and a changed feed event are applied on the next sync', async () => {
    server.etag = '"v2"';
    server.body = feed([
      { uid: 'team-day', start: ':20260520T140000', end: ':20260520T150000', summary: 'Team day (moved)' },
      {
        uid: 'standup',
        start: ';TZID=Europe/Berlin:20260518T090000',
        end: ';TZID=Europe/Berlin:20260518T091500',
        summary: 'Standup',
        extra: ['RRULE:FREQ=DAILY;COUNT=5', 'EXDATE;TZID=Europe/Berlin:20260520T090000'],
      },
    ]);
    const response = await t().request('POST', `/calendars/ics/${calendarId}/sync`);
    expect(response.json().stats).toMatchObject({ fetched: 1, updated: 1, deleted: 1 });
    const events = await t().request('GET', `/calendars/ics/${calendarId}/events`, {
      query: { start: '2026-05-20T00:00:00Z', end: '2026-05-26T00:00:00Z' },
    });
    const titles = events.json().events.map((event: { title: string }) => event.title);
    expect(titles).toContain('Team day (moved)');
    expect(titles).not.toContain('Whit Monday');
  });

  it('a failing feed is a 502 PROVIDER_* problem kept in last_error; the next good sync clears it', async () => {
    const original = server.url;
    server.server!.removeAllListeners('request');
    server.server!.on('request', (_request: http.IncomingMessage, response: http.ServerResponse) =>
      response.writeHead(500).end('down'),
    );
    const failed = await t().request('POST', `/calendars/ics/${calendarId}/sync`);
    expect(failed.statusCode).toBe(502);
    expect(failed.json()).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', status: 502 });
    const shown = await t().request('GET', `/calendars/ics/${calendarId}`);
    expect(shown.json()).toMatchObject({ status: 'error', last_error: expect.stringMatching(/ICS Feed/) });
    server.server!.removeAllListeners('request');
    server.server!.on('request', (_request: http.IncomingMessage, response: http.ServerResponse) =>
      response.writeHead(200, { 'content-type': 'text/calendar' }).end(server.body),
    );
    const recovered = await t().request('POST', `/calendars/ics/${calendarId}/sync`);
    expect(recovered.statusCode).toBe(200);
    expect((await t().request('GET', `/calendars/ics/${calendarId}`)).json()).toMatchObject({
      status: 'active',
      last_error: null,
    });
    expect(original).toBe(server.url);
  });

  it('another organization sees none of it; a read key cannot connect; a second connection of the same feed is refused', async () => {
    const other = await t().keyFor('globex', ['admin']);
    expect((await t().request('GET', `/calendars/ics/${connectionId}`, { key: other })).statusCode).toBe(404);
    expect((await t().request('GET', '/calendars', { key: other })).json().calendars).toEqual([]);
    expect((await t().request('DELETE', `/calendars/ics/${connectionId}`, { key: other })).statusCode).toBe(
      404,
    );
    const reader = await t().keyFor('acme', ['read']);
    const refused = await t().request('POST', '/calendars/ics/connect', {
      key: reader,
      body: { resource_id: resourceId, url: server.url },
    });
    expect(refused.statusCode).toBe(403);
    const twice = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: resourceId, url: server.url },
    });
    expect(twice.json().code).toBe('CALENDAR_ALREADY_CONNECTED');
  });

  it('a calendar id connected to two resources is ambiguous unless resource_id narrows it', async () => {
    const second = await t().request('POST', '/resources', {
      body: { name: 'Ben', kind: 'person', time_zone: 'Europe/Berlin' },
    });
    const secondId = second.json().resource_id;
    const connected = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: secondId, url: server.url },
    });
    expect(connected.json().calendar_id).toBe(calendarId);
    const ambiguous = await t().request('GET', `/calendars/ics/${calendarId}`);
    expect(ambiguous.statusCode).toBe(409);
    expect(ambiguous.json().code).toBe('AMBIGUOUS_CALENDAR');
    const narrowed = await t().request('GET', `/calendars/ics/${calendarId}`, {
      query: { resource_id: secondId },
    });
    expect(narrowed.json().resource_id).toBe(secondId);
    const removed = await t().request('DELETE', `/calendars/ics/${calendarId}`, {
      query: { resource_id: secondId },
    });
    expect(removed.json()).toEqual({ message: 'ICS Feed disconnected successfully.' });
  });

  it('a request to sync that arrives during a sync leaves the connection due, not planned for later', async () => {
    // The feed answers only when released: the sync is surely running while the request comes in.
    const fetching = gate();
    const release = gate();
    server.server!.removeAllListeners('request');
    server.server!.on('request', (_request: http.IncomingMessage, response: http.ServerResponse) => {
      fetching.open();
      void release.opened.then(() =>
        response.writeHead(200, { 'content-type': 'text/calendar' }).end(server.body),
      );
    });
    const connection = await t()
      .database.db.selectFrom('calendar_connections')
      .select('connection_id')
      .where('calendar_id', '=', calendarId)
      .executeTakeFirstOrThrow();
    const running = syncConnection(t().calendarDeps, connection.connection_id);
    await Promise.race([fetching.opened, running]);
    await requestSync(t().calendarDeps, [connection.connection_id]);
    release.open();
    await running;
    const row = await t()
      .database.db.selectFrom('calendar_connections')
      .select('next_sync_at')
      .where('connection_id', '=', connection.connection_id)
      .executeTakeFirstOrThrow();
    expect(row.next_sync_at?.getTime()).toBe(t().clock.now);
    await syncConnection(t().calendarDeps, connection.connection_id);
    const planned = await t()
      .database.db.selectFrom('calendar_connections')
      .select('next_sync_at')
      .where('connection_id', '=', connection.connection_id)
      .executeTakeFirstOrThrow();
    expect(planned.next_sync_at?.getTime()).toBe(t().clock.now + 15 * 60_000);
  });

  it('a provider this server has no settings for is refused, naming it', async () => {
    const response = await t().request('POST', '/calendars/google/connect', {
      body: { resource_id: resourceId },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([
      { field: 'provider', message: 'Google Calendar is not configured on this server' },
    ]);
  });

  it('connecting, syncing and disconnecting are in the audit log', async () => {
    const audit = await t().request('GET', '/audit-log', { query: { target_id: connectionId } });
    const actions = audit.json().entries.map((entry: { action: string }) => entry.action);
    expect(actions).toEqual(
      expect.arrayContaining(['calendar.connected', 'calendar.synced', 'calendar.updated']),
    );
  });
});

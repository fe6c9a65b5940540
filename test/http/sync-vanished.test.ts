import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';
import { gate, type Gate } from '../support/gate.js';
import { createOpenResource } from '../support/resources.js';

const FEED = [
  'BEGIN:VCALENDAR',
  'VERSION:2.0',
  'PRODID:-//Example//Vanishing//EN',
  'BEGIN:VEVENT',
  'UID:one',
  'DTSTAMP:20260501T000000Z',
  'DTSTART:20260520T100000Z',
  'DTEND:20260520T110000Z',
  'SUMMARY:Team day',
  'END:VEVENT',
  'END:VCALENDAR',
  '',
].join('\r\n');

describeOnBackends('a calendar deleted while it syncs', (t) => {
  // While `hold` is set, the feed answers only once the test opens it.
  const state = { hold: undefined as { arrived: Gate; release: Gate } | undefined, url: '' };
  const server = http.createServer((_request, response) => {
    const answer = () => response.writeHead(200, { 'content-type': 'text/calendar' }).end(FEED);
    const hold = state.hold;
    if (hold === undefined) return answer();
    hold.arrived.open();
    void hold.release.opened.then(answer);
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/team.ics`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('ends the sync instead of failing with a foreign-key error', async () => {
    const resourceId = await createOpenResource(t(), { name: 'Ana', kind: 'person', time_zone: 'UTC' });
    const connected = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: resourceId, url: state.url },
    });
    expect(connected.statusCode, connected.body).toBe(201);
    const calendarId = connected.json().calendar_id as string;
    const connectionId = connected.json().connection_id as string;

    state.hold = { arrived: gate(), release: gate() };
    const syncing = t().request('POST', `/calendars/ics/${calendarId}/sync`);
    await state.hold.arrived.opened;
    const deleted = await t()
      .database.db.deleteFrom('calendar_connections')
      .where('connection_id', '=', connectionId)
      .executeTakeFirst();
    expect(Number(deleted.numDeletedRows)).toBe(1);
    state.hold.release.open();
    const res = await syncing;
    state.hold = undefined;

    // The sync ends where the connection vanished: no server error, no claim of success, nothing stored.
    expect(res.statusCode, res.body).toBe(404);
    expect(res.json().code).toBe('CALENDAR_NOT_FOUND');
    const events = await t()
      .database.db.selectFrom('calendar_events')
      .select('remote_id')
      .where('connection_id', '=', connectionId)
      .execute();
    expect(events).toEqual([]);
  });
});

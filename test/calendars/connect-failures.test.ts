import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';

const FEED = [
  'BEGIN:VCALENDAR',
  'VERSION:2.0',
  'PRODID:-//Example//Feed//EN',
  'BEGIN:VEVENT',
  'UID:one',
  'DTSTAMP:20260501T000000Z',
  'DTSTART:20260520T100000Z',
  'DTEND:20260520T110000Z',
  'SUMMARY:One',
  'END:VEVENT',
  'END:VCALENDAR',
  '',
].join('\r\n');

/** A feed at /feed.ics; every other path is a 404. */
function feedServer() {
  return http.createServer((request, response) => {
    if (request.url === '/feed.ics') response.writeHead(200, { 'content-type': 'text/calendar' }).end(FEED);
    else response.writeHead(404).end('no such calendar');
  });
}

describeOnBackends('provider-side failures at connect and at sync', (t) => {
  const server = feedServer();
  let base: string;
  let resourceId: string;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    resourceId = await createOpenResource(t(), { name: 'Feeds', kind: 'room', time_zone: 'UTC' });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a calendar address that the provider answers 404 at connect is a 502 PROVIDER_NOT_FOUND', async () => {
    const response = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: resourceId, url: `${base}/gone.ics` },
    });
    expect(response.statusCode).toBe(502);
    expect(response.json()).toMatchObject({ status: 502, code: 'PROVIDER_NOT_FOUND' });
  });

  it('a URL the user gives that this server refuses is still a 400 naming url at connect', async () => {
    const response = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: resourceId, url: 'http://127.0.0.2/feed.ics' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'url' }] });
  });

  it('the same feed twice on one resource is a 409 naming the existing connection', async () => {
    const first = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: resourceId, url: `${base}/feed.ics` },
    });
    expect(first.statusCode, first.body).toBe(201);
    const existing = first.json().connection_id as string;
    const again = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: resourceId, url: `${base}/feed.ics` },
    });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'CALENDAR_ALREADY_CONNECTED' });
    expect(again.json().detail).toContain(existing);
    const listed = (await t().request('GET', '/calendars')).json().calendars as { resource_id: string }[];
    expect(listed.filter((connection) => connection.resource_id === resourceId)).toHaveLength(1);
  });

  it('an address refused at sync time (the stored URL now points inward) is a 502, not a 400', async () => {
    const other = await createOpenResource(t(), { name: 'Moved', kind: 'room', time_zone: 'UTC' });
    const connected = await t().request('POST', '/calendars/ics/connect', {
      body: { resource_id: other, url: `${base}/feed.ics` },
    });
    expect(connected.statusCode, connected.body).toBe(201);
    const connectionId = connected.json().connection_id as string;
    await t()
      .database.db.updateTable('calendar_connections')
      .set({ credentials_sealed: t().secretBox.sealJson({ url: 'http://127.0.0.2/feed.ics' }) })
      .where('connection_id', '=', connectionId)
      .execute();
    const synced = await t().request('POST', `/calendars/ics/${connectionId}/sync`);
    expect(synced.statusCode, synced.body).toBe(502);
    expect(synced.json().code).toMatch(/^PROVIDER_/);
    expect(synced.json().errors).toBeUndefined();
  });
});

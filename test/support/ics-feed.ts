import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { createOpenResource } from './resources.js';
import type { TestApp } from './test-app.js';

export type ConnectedFeed = { resourceId: string; calendarId: string; close(): Promise<void> };

/**
 * Serves `feed` on 127.0.0.1, connects it as an ICS calendar of a new open room in UTC named
 * `name`, and syncs it once; close() stops serving it.
 */
export async function connectFeed(app: TestApp, name: string, feed: string): Promise<ConnectedFeed> {
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(feed);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${encodeURIComponent(name)}.ics`;
  const resourceId = await createOpenResource(app, { name, kind: 'room', time_zone: 'UTC' });
  const connected = await app.request('POST', '/calendars/ics/connect', {
    body: { resource_id: resourceId, url },
  });
  expect(connected.statusCode, connected.body).toBe(201);
  const calendarId = connected.json().calendar_id as string;
  const synced = await app.request('POST', `/calendars/ics/${calendarId}/sync`);
  expect(synced.statusCode, synced.body).toBe(200);
  return { resourceId, calendarId, close };
}

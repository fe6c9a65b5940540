import { googleSettings } from '../emulators/environment.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushUnavailableReason, pushView } from '../../src/calendar/policy/push-availability.js';
import { type GoogleEmulator, startGoogleEmulator } from '../emulators/google/emulator.js';
import { backends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

describe('whether push can reach this server', () => {
  it.each([
    ['https://sched.example.com', undefined],
    ['http://127.0.0.1:3000', undefined],
    ['http://localhost:3000', undefined],
    ['http://[::1]:3000', undefined],
    [
      'http://sched.example.com',
      /Google Calendar sends push notifications only to https addresses, and SCHED_PUBLIC_URL is http:\/\/sched\.example\.com/,
    ],
    ['http://10.0.0.5:3000', /only to https addresses/],
    [undefined, /need SCHED_PUBLIC_URL/],
  ])('SCHED_PUBLIC_URL %s', (publicUrl, reason) => {
    const said = pushUnavailableReason('google', publicUrl);
    if (reason === undefined) expect(said).toBeUndefined();
    else expect(said).toMatch(reason);
  });

  it('connections say why they are polled: realtime off, a provider without push, or an address providers refuse', () => {
    expect(pushView('google', true, 'https://sched.example.com')).toEqual({ status: 'on', reason: null });
    expect(pushView('outlook', false, 'https://sched.example.com')).toEqual({ status: 'off', reason: null });
    expect(pushView('caldav', true, 'https://sched.example.com')).toEqual({
      status: 'unavailable',
      reason: 'CalDAV Calendar has no push notifications; it is polled at frequency_minutes',
    });
    expect(pushView('outlook', true, 'http://sched.example.com').status).toBe('unavailable');
  });
});

const pglite = backends.find((backend) => backend.name === 'pglite')!;

describe('a server reached over plain http from outside', () => {
  let emulator: GoogleEmulator;
  let t: TestApp;

  beforeAll(async () => {
    emulator = await startGoogleEmulator();
    t = await startTestApp(pglite, '2026-05-18T06:00:00Z', {
      google: googleSettings(emulator),
      env: { SCHED_PUBLIC_URL: 'http://sched.example.com' },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await emulator?.stop();
  });

  it('warns at start, reports push unavailable on the connection, and opens no channel Google would refuse', async () => {
    expect(t.deps.warnings).toContainEqual(
      expect.stringMatching(/^Google Calendar sends push notifications only to https/),
    );
    const resourceId = await createOpenResource(t, { name: 'Polled', kind: 'person', time_zone: 'UTC' });
    const calendar = await emulator.control.createCalendar({ summary: 'polled' });
    const connected = await t.request('POST', '/calendars/google/connect', {
      body: {
        resource_id: resourceId,
        calendar_id: calendar.id,
        oauth_token: (await emulator.control.mintTokens()).access_token,
        sync: { realtime: true },
      },
    });
    expect(connected.statusCode, connected.body).toBe(201);
    expect(connected.json().push).toEqual({
      status: 'unavailable',
      reason: expect.stringContaining('connections are polled instead'),
    });
    const synced = await t.request('POST', `/calendars/google/${connected.json().connection_id}/sync`);
    expect(synced.statusCode, synced.body).toBe(200);
    expect((await emulator.control.channels()).filter((c) => c.calendarId === calendar.id)).toEqual([]);
  });
});

describe('the page a person sees back from consent', () => {
  let emulator: GoogleEmulator;
  let t: TestApp;

  beforeAll(async () => {
    emulator = await startGoogleEmulator();
    t = await startTestApp(pglite, '2026-05-18T06:00:00Z', {
      google: googleSettings(emulator),
      env: { SCHED_PUBLIC_URL: 'https://sched.example.com' },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await emulator?.stop();
  });

  async function backFromProvider(): Promise<string> {
    const resourceId = await createOpenResource(t, { name: 'Consenting', kind: 'person', time_zone: 'UTC' });
    const calendar = await emulator.control.createCalendar({ summary: 'consent' });
    const started = await t.request('POST', '/calendars/google/connect', {
      body: { resource_id: resourceId, calendar_id: calendar.id },
    });
    expect(started.statusCode, started.body).toBe(200);
    const answer = await fetch(started.json().authorization_url as string, { redirect: 'manual' });
    expect(answer.status).toBe(302);
    const location = new URL(answer.headers.get('location')!);
    expect(location.origin).toBe('https://sched.example.com');
    return `${location.pathname}${location.search}`;
  }

  const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

  it('a refused consent is a page that says so, with the reason, and a 400', async () => {
    await emulator.control.setOAuth({ consent: 'deny' });
    try {
      const callback = await backFromProvider();
      const page = await t.request('GET', callback, { key: null, headers: browser });
      expect(page.statusCode).toBe(400);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.body).toContain('<h1 role="alert">The calendar was not connected</h1>');
      expect(page.body).toContain('Google Calendar did not authorize the connection (access_denied');
      expect(page.body).not.toContain('<script');
    } finally {
      await emulator.control.setOAuth({ consent: 'approve' });
    }
  });

  it('an API client asking for JSON still gets JSON', async () => {
    const callback = await backFromProvider();
    const answer = await t.request('GET', callback, { key: null, headers: { accept: 'application/json' } });
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.json()).toMatchObject({
      message: 'Google Calendar connected successfully.',
      connection: { status: 'active', push: { status: 'on', reason: null } },
    });
  });
});

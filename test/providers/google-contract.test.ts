import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AccessTokenSource } from '../../src/calendar/port/provider.js';
import { GuardedHttp } from '../../src/integrations/http/guarded-http.js';
import { OutboundGuard } from '../../src/integrations/http/outbound-guard.js';
import {
  GoogleCalendarProvider,
  type GoogleProviderOptions,
} from '../../src/calendar/providers/google/google-provider.js';
import { NOTIFICATION_PARSERS } from '../../src/calendar/port/notifications.js';
import { ProviderError } from '../../src/integrations/errors.js';
import { type GoogleEmulator, startGoogleEmulator } from '../emulators/google/emulator.js';
import { authorizeWithPkce, RefreshingTokens } from '../emulators/google/test-clients.js';
import { bookingEvent, describeProviderContract, externalEvent, readBack } from './provider-contract.js';

const REDIRECT = 'http://127.0.0.1:9/oauth/google/callback';

let emulator: GoogleEmulator;
/** What Google's notifications carry, headers and body size, as they arrive at `callbackUrl`. */
const received: http.IncomingHttpHeaders[] = [];
const bodies: number[] = [];
const receiver = http.createServer((request, response) => {
  let size = 0;
  request.on('data', (chunk: Buffer) => (size += chunk.length));
  request.on('end', () => {
    received.push(request.headers);
    bodies.push(size);
    response.writeHead(200).end();
  });
});
let callbackUrl = '';
let tokens: RefreshingTokens;
const guarded = new GuardedHttp(new OutboundGuard({ allow: ['127.0.0.1/32'] }));

beforeAll(async () => {
  emulator = await startGoogleEmulator();
  const granted = await authorizeWithPkce(emulator, REDIRECT);
  tokens = new RefreshingTokens(emulator, granted.access_token, granted.refresh_token);
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/google`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await emulator?.stop();
  await guarded.close();
});

function providerFor(calendarId: string, extra: Partial<GoogleProviderOptions> = {}) {
  return new GoogleCalendarProvider({ http: guarded, apiUrl: emulator.apiUrl, calendarId, tokens, ...extra });
}

function externalFor(calendarId: string) {
  return {
    async put(ics: string) {
      await emulator.control.importIcs(calendarId, ics);
    },
    async remove(remoteId: string) {
      await emulator.control.deleteEvent(calendarId, remoteId);
    },
  };
}

describeProviderContract('Google (emulator)', async () => {
  const { id } = await emulator.control.createCalendar();
  return {
    provider: providerFor(id),
    external: externalFor(id),
    close: async () => undefined,
    push: {
      callbackUrl,
      lifecycleUrl: `${callbackUrl}/lifecycle`,
      parse: NOTIFICATION_PARSERS.google,
      delivered: () => received.map((headers) => ({ headers, body: null })),
      idle: async () => {
        await emulator.control.pushIdle();
      },
    },
  };
});

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error: unknown = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof ProviderError)) throw new Error(`expected a ProviderError, got ${String(error)}`);
  return error;
}

const iso = (ms: number) => new Date(ms).toISOString();
const none = new Map<string, string | null>();

describe('Google adapter against the emulator', () => {
  let calendarId: string;
  beforeEach(async () => {
    await emulator.control.clearFaults();
    await emulator.control.setPaging({ maxPageSize: null, emptyPages: 0 });
    calendarId = (await emulator.control.createCalendar()).id;
    await emulator.control.clearRequests();
  });

  it('lists through short and empty pages, full and incremental', async () => {
    await emulator.control.setPaging({ maxPageSize: 2, emptyPages: 1 });
    const external = externalFor(calendarId);
    for (let i = 0; i < 5; i++) await external.put(externalEvent(`${randomUUID()}@elsewhere`, `E${i}`));
    const provider = providerFor(calendarId);
    const full = await provider.listChanges(null, none);
    expect(full.changed.map((e) => readBack(e.ics).summary.title).sort()).toEqual([
      'E0',
      'E1',
      'E2',
      'E3',
      'E4',
    ]);
    const lists = (await emulator.control.requests()).filter(
      (r) => r.method === 'GET' && r.path.endsWith('/events'),
    );
    // empty, 2, empty, 2, empty, 1 (+ sync token)
    expect(lists).toHaveLength(6);
    for (let i = 0; i < 3; i++) await external.put(externalEvent(`${randomUUID()}@elsewhere`, `F${i}`));
    const delta = await provider.listChanges(
      full.cursor,
      new Map(full.changed.map((e) => [e.remoteId, e.etag])),
    );
    expect(delta.full).toBe(false);
    expect(delta.changed.map((e) => readBack(e.ics).summary.title).sort()).toEqual(['F0', 'F1', 'F2']);
  });

  it('a sync token Google refuses (410) leads to a full listing that finds a deletion', async () => {
    const provider = providerFor(calendarId);
    const kept = await provider.createEvent(bookingEvent());
    const dropped = await provider.createEvent(bookingEvent());
    const listing = await provider.listChanges(null, none);
    const known = new Map(listing.changed.map((e) => [e.remoteId, e.etag]));
    await emulator.control.deleteEvent(calendarId, dropped.remoteId);
    await emulator.control.expireSyncTokens(calendarId);
    const changes = await provider.listChanges(listing.cursor, known);
    expect(changes).toMatchObject({ full: true, changed: [], removed: [dropped.remoteId] });
    expect(changes.cursor).not.toBeNull();
    expect((await emulator.control.requests()).some((r) => r.status === 410)).toBe(true);
    const after = await provider.listChanges(changes.cursor, new Map([[kept.remoteId, kept.etag]]));
    expect(after).toMatchObject({ full: false, changed: [], removed: [] });
  });

  it('folds a moved exception and cancelled instances into the series object', async () => {
    const uid = `${randomUUID()}@elsewhere`;
    const series = [
      'BEGIN:VCALENDAR',
      'VERSION:2.0',
      'PRODID:-//t//EN',
      'BEGIN:VEVENT',
      `UID:${uid}`,
      'DTSTART;TZID=America/New_York:20260302T090000',
      'DTEND;TZID=America/New_York:20260302T100000',
      'RRULE:FREQ=WEEKLY;COUNT=4',
      'SUMMARY:Standup',
      'END:VEVENT',
      'END:VCALENDAR',
      '',
    ].join('\r\n');
    const [master] = await emulator.control.importIcs(calendarId, series);
    const provider = providerFor(calendarId);
    const first = await provider.listChanges(null, none);
    expect(first.changed).toHaveLength(1);
    // 2 March is before the US change (14:00Z), the others after it (13:00Z).
    const starts = (ics: string) => readBack(ics).occurrences.map((o) => iso(o.startsAt));
    expect(starts(first.changed[0]!.ics)).toEqual([
      '2026-03-02T14:00:00.000Z',
      '2026-03-09T13:00:00.000Z',
      '2026-03-16T13:00:00.000Z',
      '2026-03-23T13:00:00.000Z',
    ]);

    // As a user: move 9 March to 15:00 local, delete 16 March.
    await emulator.control.patchEvent(calendarId, `${master!.id}_20260309T130000Z`, {
      start: { dateTime: '2026-03-09T15:00:00', timeZone: 'America/New_York' },
      end: { dateTime: '2026-03-09T16:00:00', timeZone: 'America/New_York' },
      summary: 'Standup (moved)',
    });
    await emulator.control.deleteEvent(calendarId, `${master!.id}_20260316T130000Z`);
    const known = new Map([[master!.id, first.changed[0]!.etag]]);
    const delta = await provider.listChanges(first.cursor, known);
    expect(delta.full).toBe(false);
    expect(delta.changed.map((e) => e.remoteId)).toEqual([master!.id]);
    const object = delta.changed[0]!;
    expect(object.etag).not.toBe(first.changed[0]!.etag);
    const read = readBack(object.ics);
    expect(read.summary).toMatchObject({ uid, recurring: true });
    expect(read.occurrences.map((o) => [iso(o.startsAt), o.title])).toEqual([
      ['2026-03-02T14:00:00.000Z', 'Standup'],
      ['2026-03-09T19:00:00.000Z', 'Standup (moved)'],
      ['2026-03-23T13:00:00.000Z', 'Standup'],
    ]);
    expect(await provider.getEvent(master!.id)).toEqual(object);
    const again = await provider.listChanges(null, new Map([[object.remoteId, object.etag]]));
    expect(again).toMatchObject({ changed: [], removed: [] });

    await emulator.control.deleteEvent(calendarId, master!.id);
    const gone = await provider.listChanges(delta.cursor, new Map([[object.remoteId, object.etag]]));
    expect(gone).toMatchObject({ changed: [], removed: [master!.id] });
  });

  it('maps rate limits, quota and server errors after a short bounded retry', async () => {
    const delays: number[] = [];
    const provider = providerFor(calendarId, {
      sleep: async (ms) => {
        delays.push(ms);
      },
    });
    await emulator.control.addFault({ kind: 'rateLimit429', count: 1, retryAfterSeconds: 1 });
    expect((await provider.listChanges(null, none)).full).toBe(true);
    expect(delays).toEqual([1000]);

    await emulator.control.addFault({ kind: 'rateLimit429', count: 1, retryAfterSeconds: 120 });
    const slow = await failure(provider.listChanges(null, none));
    expect(slow).toMatchObject({ code: 'RATE_LIMITED', details: { status: 429, retryAfterMs: 120_000 } });
    await emulator.control.clearFaults();

    await emulator.control.addFault({ kind: 'rateLimit403', count: 3 });
    expect(await failure(provider.listChanges(null, none))).toMatchObject({ code: 'RATE_LIMITED' });
    await emulator.control.addFault({ kind: 'userRateLimit403', count: 3 });
    expect((await failure(provider.listChanges(null, none))).code).toBe('RATE_LIMITED');
    await emulator.control.addFault({ kind: 'rateLimit429', count: 3 });
    expect((await failure(provider.listChanges(null, none))).code).toBe('RATE_LIMITED');

    await emulator.control.clearRequests();
    await emulator.control.addFault({ kind: 'quotaExceeded403', count: 1 });
    expect((await failure(provider.listChanges(null, none))).code).toBe('QUOTA_EXCEEDED');
    expect(await emulator.control.requests()).toHaveLength(1);

    await emulator.control.addFault({ kind: 'backendError500', count: 3 });
    expect((await failure(provider.listChanges(null, none))).code).toBe('UNAVAILABLE');
    await emulator.control.addFault({ kind: 'unavailable503', count: 1 });
    expect((await provider.listChanges(null, none)).full).toBe(true);
    await emulator.control.addFault({ kind: 'insufficientPermissions403', count: 1 });
    expect((await failure(provider.listChanges(null, none))).code).toBe('FORBIDDEN');
    await emulator.control.addFault({ kind: 'hang', count: 1 });
    expect((await failure(providerFor(calendarId, { timeoutMs: 300 }).listChanges(null, none))).code).toBe(
      'TIMEOUT',
    );
  });

  it('an expired access token gets one forced refresh; a revoked grant is AUTH_FAILED', async () => {
    const provider = providerFor(calendarId);
    const before = tokens.refreshes;
    await emulator.control.expireAccessTokens();
    await provider.createEvent(bookingEvent());
    expect(tokens.refreshes).toBe(before + 1);
    expect((await provider.listChanges(null, none)).changed).toHaveLength(1);
    expect(tokens.refreshes).toBe(before + 1);

    const stale: AccessTokenSource = { get: async () => 'ya29.not-a-token' };
    await emulator.control.clearRequests();
    const refused = providerFor(calendarId, { tokens: stale });
    expect((await failure(refused.listChanges(null, none))).code).toBe('AUTH_FAILED');
    expect((await emulator.control.requests()).map((r) => r.status)).toEqual([401, 401]);

    const minted = await emulator.control.mintTokens();
    const own = new RefreshingTokens(emulator, minted.access_token, minted.refresh_token!);
    const revoked = await fetch(emulator.revokeUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: minted.refresh_token! }),
    });
    expect(revoked.status).toBe(200);
    const error = await failure(providerFor(calendarId, { tokens: own }).listChanges(null, none));
    expect(error.code).toBe('AUTH_FAILED');
    expect(own.refreshes).toBe(1);
  });

  it('reads booking events by UID, restores a deleted booking event on create', async () => {
    const provider = providerFor(calendarId);
    const event = bookingEvent();
    const created = await provider.createEvent(event);
    expect(created.remoteId).toBe(`sched${event.bookingId.replace(/-/g, '')}`);
    await emulator.control.deleteEvent(calendarId, created.remoteId);
    expect(await provider.findEvent(event.uid)).toBeNull();
    const again = await provider.createEvent({ ...event, title: 'Back' });
    expect(again.remoteId).toBe(created.remoteId);
    const read = await provider.getEvent(again.remoteId);
    expect(readBack(read!.ics).summary).toMatchObject({ title: 'Back', bookingId: event.bookingId });
    const stored = await emulator.control.getEvent(calendarId, created.remoteId);
    expect(stored.extendedProperties?.private).toEqual({ schedBookingId: event.bookingId });
    expect(stored.start).toEqual({ dateTime: '2026-03-02T10:00:00+01:00', timeZone: 'Europe/Berlin' });
    // The insert supplied the id alone, as Google's docs ask; Google made the iCalUID from it, and
    // the booking's UID still comes out and still finds the event.
    const [view] = await emulator.control.storedEvents(calendarId);
    expect(view).toMatchObject({
      iCalUID: `${created.remoteId}@google.com`,
      insertedWith: { id: true, iCalUID: false },
      sendUpdates: 'none',
    });
    expect(readBack(read!.ics).summary.uid).toBe(event.uid);
    const found = await provider.findEvent(event.uid);
    expect(found?.remoteId).toBe(created.remoteId);

    // A booking event written with the booking's UID as its iCalUID (as Sched once did) is found too.
    const older = bookingEvent();
    const inserted = await emulator.control.insertEvent(calendarId, {
      id: `sched${older.bookingId.replace(/-/g, '')}`,
      iCalUID: older.uid,
      start: { dateTime: '2026-03-10T14:00:00Z' },
      end: { dateTime: '2026-03-10T15:00:00Z' },
      extendedProperties: { private: { schedBookingId: older.bookingId } },
    });
    expect(inserted.iCalUID).toBe(older.uid);
    const legacy = await provider.findEvent(older.uid);
    expect(readBack(legacy!.ics).summary).toMatchObject({ uid: older.uid, bookingId: older.bookingId });

    // Whatever iCalUID Google makes for the booking's own id, the booking's UID comes out.
    const third = bookingEvent();
    await emulator.control.insertEvent(calendarId, {
      id: `sched${third.bookingId.replace(/-/g, '')}`,
      iCalUID: '7kq2m1c0v3r5t8a9b4d6e0f2g1@google.com',
      start: { dateTime: '2026-03-11T14:00:00Z' },
      end: { dateTime: '2026-03-11T15:00:00Z' },
      extendedProperties: { private: { schedBookingId: third.bookingId } },
    });
    const derived = await provider.findEvent(third.uid);
    expect(readBack(derived!.ics).summary).toMatchObject({ uid: third.uid, bookingId: third.bookingId });
  });

  it('creates exactly once by the event id when the first answer is lost', async () => {
    const impatient = providerFor(calendarId, { timeoutMs: 300 });
    const event = bookingEvent();
    await emulator.control.addFault({ kind: 'delay', delayMs: 2000, method: 'POST', nth: 1 });
    const lost = await impatient.createEvent(event).then(
      () => null,
      (error: unknown) => error,
    );
    expect(lost).toBeInstanceOf(ProviderError);
    const retried = await providerFor(calendarId).createEvent(event);
    expect(retried.remoteId).toBe(`sched${event.bookingId.replace(/-/g, '')}`);
    const stored = await emulator.control.storedEvents(calendarId);
    expect(stored.map((e) => [e.id, e.insertedWith])).toEqual([
      [retried.remoteId, { id: true, iCalUID: false }],
    ]);
    expect(retried.etag).toBe(stored[0]!.etag);
    const inserts = (await emulator.control.requests()).filter((r) => r.method === 'POST');
    expect(inserts.map((r) => r.status)).toEqual([200, 409]);
  });
});

describe('Google push channels against the emulator', () => {
  beforeEach(async () => {
    // What the contract's watches were sent has all arrived, and is not these tests' to read.
    await emulator.control.pushIdle();
    received.length = 0;
    bodies.length = 0;
  });
  afterEach(() => {
    received.length = 0;
    bodies.length = 0;
  });

  const states = () => received.map((h) => [h['x-goog-channel-id'], h['x-goog-resource-state']]);

  it('sends sync then exists with the channel headers and no body; renew replaces, stop ends', async () => {
    const { id: calendarId } = await emulator.control.createCalendar();
    const provider = providerFor(calendarId);
    const request = {
      callbackUrl,
      lifecycleUrl: `${callbackUrl}/lifecycle`,
      secret: 's3cret',
      ttlSeconds: 3600,
    };
    const channel = await provider.startWatch(request);
    expect(channel.resourceId).toBeTruthy();
    expect(channel.expiresAt).toBeGreaterThan(Date.now() + 3500_000);
    await emulator.control.pushIdle();
    await emulator.control.insertEvent(calendarId, {
      summary: 'By a user',
      start: { dateTime: '2026-03-10T14:00:00Z' },
      end: { dateTime: '2026-03-10T15:00:00Z' },
    });
    await emulator.control.pushIdle();
    expect(states()).toEqual([
      [channel.id, 'sync'],
      [channel.id, 'exists'],
    ]);
    expect(bodies).toEqual([0, 0]);
    const parsed = received.map((headers) => NOTIFICATION_PARSERS.google({ headers, body: null }));
    const held = { channelId: channel.id, token: 's3cret', resourceId: channel.resourceId };
    expect(parsed).toEqual([[{ ...held, state: 'confirmed' }], [{ ...held, state: 'changed' }]]);
    const [sync, exists] = received;
    expect(sync!['x-goog-message-number']).toBe('1');
    expect(Number(exists!['x-goog-message-number'])).toBeGreaterThan(1);
    expect(exists!['x-goog-resource-uri']).toContain('/calendar/v3/calendars/');
    const expiresAt = Date.parse(String(exists!['x-goog-channel-expiration']));
    expect(Math.abs(expiresAt - channel.expiresAt)).toBeLessThan(1000);

    const renewed = await provider.renewWatch(channel, request);
    expect(renewed.id).not.toBe(channel.id);
    expect(renewed.resourceId).toBe(channel.resourceId);
    received.length = 0;
    await emulator.control.pushIdle();
    received.length = 0;
    const created = await provider.createEvent(bookingEvent());
    await emulator.control.pushIdle();
    expect(states()).toEqual([[renewed.id, 'exists']]);

    await provider.stopWatch(renewed);
    await provider.stopWatch(renewed);
    received.length = 0;
    await provider.deleteEvent(created.remoteId, created.etag);
    await emulator.control.pushIdle();
    expect(received).toEqual([]);
  });

  it('stops notifying after expiry and refuses addresses other than loopback', async () => {
    const { id: calendarId } = await emulator.control.createCalendar();
    const provider = providerFor(calendarId);
    const request = { callbackUrl, lifecycleUrl: callbackUrl, secret: 'x', ttlSeconds: 60 };
    await provider.startWatch(request);
    await emulator.control.pushIdle();
    received.length = 0;
    await emulator.control.advanceClock(61_000);
    try {
      await emulator.control.insertEvent(calendarId, {
        start: { dateTime: '2026-03-10T14:00:00Z' },
        end: { dateTime: '2026-03-10T15:00:00Z' },
      });
      await emulator.control.pushIdle();
      expect(received).toEqual([]);
    } finally {
      await emulator.control.advanceClock(-61_000);
    }
    const refused = await failure(
      provider.startWatch({ ...request, callbackUrl: 'https://hooks.example.com/google' }),
    );
    expect(refused).toMatchObject({ code: 'REJECTED', details: { status: 400 } });
  });
});

describe('Google notification parser (the one /hooks/google runs)', () => {
  const parse = (headers: Record<string, string | string[] | undefined>) =>
    NOTIFICATION_PARSERS.google({ headers, body: null });
  const headers = {
    'x-goog-channel-id': 'c-1',
    'x-goog-channel-token': 'tok',
    'x-goog-resource-id': 'r-1',
    'x-goog-resource-state': 'exists',
    'x-goog-message-number': '17',
    'x-goog-channel-expiration': 'Tue, 19 Nov 2030 01:13:52 GMT',
  };
  const item = { channelId: 'c-1', token: 'tok', resourceId: 'r-1' };

  it('reads the headers in any case, and what each resource state asks', () => {
    const { 'x-goog-channel-id': _id, ...rest } = headers;
    expect(parse({ ...rest, 'X-Goog-Channel-ID': [' c-1 ', 'c-2'] })).toEqual([
      { ...item, state: 'changed' },
    ]);
    expect(parse({ ...headers, 'x-goog-resource-state': 'not_exists' })).toEqual([
      { ...item, state: 'changed' },
    ]);
    expect(parse({ ...headers, 'x-goog-resource-state': 'sync', 'x-goog-message-number': '1' })).toEqual([
      { ...item, state: 'confirmed' },
    ]);
    expect(parse({ ...headers, 'x-goog-channel-token': undefined })).toEqual([
      { ...item, token: null, state: 'changed' },
    ]);
  });

  it('refuses incomplete or malformed headers', () => {
    for (const broken of [
      { 'x-goog-resource-state': 'changed' },
      { 'x-goog-resource-state': 'constructor' },
      { 'x-goog-resource-state': undefined },
      { 'x-goog-message-number': '1e3' },
      { 'x-goog-message-number': undefined },
      { 'x-goog-resource-id': '' },
      { 'x-goog-resource-id': undefined },
      { 'x-goog-channel-id': '' },
      { 'x-goog-channel-id': undefined },
    ]) {
      expect(parse({ ...headers, ...broken }), JSON.stringify(broken)).toEqual([]);
    }
    expect(parse({})).toEqual([]);
  });
});

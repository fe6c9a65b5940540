import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../support/wait-for.js';
import { type GoogleEmulator, startGoogleEmulator } from './emulator.js';
import { type ApiAnswer as Answer, apiClient, errorReason as reason } from './test-clients.js';

let emulator: GoogleEmulator;
let bearer: string;
let calendar: string;

beforeAll(async () => {
  emulator = await startGoogleEmulator();
});
afterAll(() => emulator?.stop());
beforeEach(async () => {
  await emulator.control.reset();
  bearer = (await emulator.control.mintTokens()).access_token;
  calendar = (await emulator.control.createCalendar()).id;
});

const api = (...args: Parameters<ReturnType<typeof apiClient>>) => apiClient(emulator, () => bearer)(...args);
const events = (query = '') => `/calendars/${encodeURIComponent(calendar)}/events${query}`;
const event = (id: string) => `/calendars/${encodeURIComponent(calendar)}/events/${encodeURIComponent(id)}`;
const timed = (summary: string, day = 10, extra: Record<string, unknown> = {}) => ({
  summary,
  start: { dateTime: `2026-03-${day}T14:00:00Z` },
  end: { dateTime: `2026-03-${day}T15:00:00Z` },
  ...extra,
});

describe('events', () => {
  it('validates client ids, refuses duplicates (409), stale If-Match (412) and a second delete (410)', async () => {
    expect(reason(await api('POST', events(), { body: timed('x', 10, { id: 'UPPER-case' }) }))).toBe(
      'invalid',
    );
    const created = await api('POST', events(), { body: timed('x', 10, { id: 'abc0123456v' }) });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      id: 'abc0123456v',
      iCalUID: 'abc0123456v@google.com',
      status: 'confirmed',
    });
    const duplicate = await api('POST', events(), { body: timed('y', 10, { id: 'abc0123456v' }) });
    expect([duplicate.status, reason(duplicate)]).toEqual([409, 'duplicate']);

    const patched = await api('PATCH', event('abc0123456v'), {
      body: { summary: 'z' },
      headers: { 'if-match': created.body.etag },
    });
    expect(patched.body.etag).not.toBe(created.body.etag);
    const stale = await api('PUT', event('abc0123456v'), {
      body: timed('w'),
      headers: { 'if-match': created.body.etag },
    });
    expect([stale.status, reason(stale)]).toEqual([412, 'conditionNotMet']);
    expect(
      (await api('DELETE', event('abc0123456v'), { headers: { 'if-match': created.body.etag } })).status,
    ).toBe(412);
    expect((await api('DELETE', event('abc0123456v'))).status).toBe(204);
    const twice = await api('DELETE', event('abc0123456v'));
    expect([twice.status, reason(twice)]).toEqual([410, 'deleted']);
    expect((await api('GET', event('abc0123456v'))).body.status).toBe('cancelled');
    expect((await api('DELETE', event('nosuchevent'))).status).toBe(404);
  });

  it('merges extended properties on PATCH, replaces them on PUT, and filters on them (AND)', async () => {
    const created = await api('POST', events(), {
      body: timed('x', 10, { extendedProperties: { private: { a: '1', b: '2' } } }),
    });
    const merged = await api('PATCH', event(created.body.id), {
      body: { extendedProperties: { private: { b: null, c: '3' } } },
    });
    expect(merged.body.extendedProperties).toEqual({ private: { a: '1', c: '3' } });
    await api('POST', events(), {
      body: timed('other', 11, { extendedProperties: { private: { a: '1' } } }),
    });
    const both = await api('GET', events('?privateExtendedProperty=a%3D1&privateExtendedProperty=c%3D3'));
    expect(both.body.items.map((e: any) => e.id)).toEqual([created.body.id]);
    const replaced = await api('PUT', event(created.body.id), { body: timed('x') });
    expect(replaced.body.extendedProperties).toBeUndefined();
    const { start, end } = timed('', 12);
    const sequence = await api('PATCH', event(created.body.id), { body: { start, end } });
    expect(sequence.status).toBe(200);
    expect(sequence.body.sequence).toBe(1);
    expect((await api('PATCH', event(created.body.id), { body: { sequence: 0 } })).status).toBe(400);
  });

  it('expands series, lists exceptions and cancelled instances, and serves events.instances', async () => {
    const master = await api('POST', events(), {
      body: {
        summary: 'Daily',
        start: { dateTime: '2026-03-28T09:00:00', timeZone: 'Europe/Berlin' },
        end: { dateTime: '2026-03-28T09:30:00', timeZone: 'Europe/Berlin' },
        recurrence: ['RRULE:FREQ=DAILY;UNTIL=20260331T070000Z'],
      },
    });
    expect(master.status).toBe(200);
    const noZone = await api('POST', events(), {
      body: timed('r', 10, { recurrence: ['RRULE:FREQ=DAILY'] }),
    });
    expect(noZone.status).toBe(400);
    const ids = (answer: Answer) => answer.body.items.map((e: any) => e.id);
    const instances = await api('GET', `${event(master.body.id)}/instances`);
    // 29 March is the DST change: 09:00 local moves from 08:00Z to 07:00Z.
    expect(ids(instances)).toEqual(
      ['20260328T080000Z', '20260329T070000Z', '20260330T070000Z', '20260331T070000Z'].map(
        (s) => `${master.body.id}_${s}`,
      ),
    );
    const { body: full } = await api('GET', events());
    await api('DELETE', event(`${master.body.id}_20260329T070000Z`));
    await api('PATCH', event(`${master.body.id}_20260330T070000Z`), { body: { summary: 'Moved' } });
    const listed = await api('GET', events());
    expect(listed.body.items.map((e: any) => [e.id, e.status])).toEqual([
      [master.body.id, 'confirmed'],
      [`${master.body.id}_20260329T070000Z`, 'cancelled'],
      [`${master.body.id}_20260330T070000Z`, 'confirmed'],
    ]);
    const delta = await api('GET', events(`?syncToken=${full.nextSyncToken}`));
    expect(delta.body.items).toEqual([
      expect.objectContaining({ id: `${master.body.id}_20260329T070000Z`, status: 'cancelled' }),
      expect.objectContaining({ id: `${master.body.id}_20260330T070000Z`, summary: 'Moved' }),
    ]);
    expect(Object.keys(delta.body.items[0]).sort()).toEqual(
      ['etag', 'id', 'kind', 'originalStartTime', 'recurringEventId', 'status'].sort(),
    );
    const single = await api('GET', events('?singleEvents=true&orderBy=startTime'));
    expect(single.body.items.map((e: any) => e.summary)).toEqual(['Daily', 'Moved', 'Daily']);
    const withDeleted = await api('GET', `${event(master.body.id)}/instances?showDeleted=true`);
    expect(withDeleted.body.items).toHaveLength(4);
  });
});

describe('events.list', () => {
  it('pages with maxResults, short and empty pages; nextSyncToken only on the last page', async () => {
    for (let i = 1; i <= 5; i++) await api('POST', events(), { body: timed(`E${i}`, 10 + i) });
    await emulator.control.setPaging({ maxPageSize: 2, emptyPages: 1 });
    const pages: Answer[] = [];
    let token: string | undefined;
    do {
      const page = await api('GET', events(`?maxResults=3${token ? `&pageToken=${token}` : ''}`));
      pages.push(page);
      token = page.body.nextPageToken;
    } while (token);
    expect(pages.map((p) => p.body.items.length)).toEqual([0, 2, 0, 2, 0, 1]);
    expect(pages.slice(0, -1).every((p) => p.body.nextSyncToken === undefined)).toBe(true);
    expect(pages.at(-1)!.body.nextSyncToken).toBeTruthy();
    expect(pages.flatMap((p) => p.body.items.map((e: any) => e.summary))).toEqual([
      'E1',
      'E2',
      'E3',
      'E4',
      'E5',
    ]);
    expect((await api('GET', events('?maxResults=3&pageToken=garbage'))).status).toBe(400);
  });

  it('answers incrementally from a sync token, refuses restrictions, and 410 after expiry', async () => {
    const a = await api('POST', events(), { body: timed('a') });
    const first = await api('GET', events());
    expect(first.body.nextSyncToken).toBeTruthy();
    const unchanged = await api('GET', events(`?syncToken=${first.body.nextSyncToken}`));
    expect(unchanged.body.items).toEqual([]);
    await api('DELETE', event(a.body.id));
    const b = await api('POST', events(), { body: timed('b') });
    const delta = await api('GET', events(`?syncToken=${first.body.nextSyncToken}`));
    expect(delta.body.items).toEqual([
      { kind: 'calendar#event', etag: expect.any(String), id: a.body.id, status: 'cancelled' },
      expect.objectContaining({ id: b.body.id, summary: 'b' }),
    ]);
    const restricted = await api(
      'GET',
      events(`?syncToken=${first.body.nextSyncToken}&timeMin=2026-01-01T00:00:00Z`),
    );
    expect(restricted.body.error.message).toBe('Sync token cannot be used with other request restrictions.');
    expect(
      (await api('GET', events(`?syncToken=${first.body.nextSyncToken}&showDeleted=false`))).status,
    ).toBe(400);
    expect(
      (await api('GET', events(`?syncToken=${first.body.nextSyncToken}&singleEvents=true`))).status,
    ).toBe(400);

    await emulator.control.expireSyncTokens(calendar);
    const gone = await api('GET', events(`?syncToken=${first.body.nextSyncToken}`));
    expect(gone.body).toEqual({
      error: {
        code: 410,
        message: 'Sync token is no longer valid, a full sync is required.',
        errors: [
          {
            domain: 'calendar',
            reason: 'fullSyncRequired',
            message: 'Sync token is no longer valid, a full sync is required.',
            locationType: 'parameter',
            location: 'syncToken',
          },
        ],
      },
    });
    expect((await api('GET', events('?syncToken=tampered'))).status).toBe(410);
    const fresh = (await api('GET', events())).body.nextSyncToken as string;
    await api('DELETE', event(b.body.id));
    expect(await emulator.control.purgeTombstones(calendar)).toBe(2);
    expect((await api('GET', events(`?syncToken=${fresh}`))).status).toBe(410);
  });

  it('validates time bounds and orderBy, and filters by time and iCalUID', async () => {
    await api('POST', events(), { body: timed('early', 10, { iCalUID: 'one@x' }) });
    await api('POST', events(), { body: timed('late', 20) });
    const empty = await api('GET', events('?timeMin=2026-03-12T00:00:00Z&timeMax=2026-03-11T00:00:00Z'));
    expect([empty.status, reason(empty)]).toEqual([400, 'timeRangeEmpty']);
    expect((await api('GET', events('?timeMin=2026-03-12T00:00:00'))).status).toBe(400);
    expect((await api('GET', events('?orderBy=startTime'))).status).toBe(400);
    const window = await api(
      'GET',
      events('?timeMin=2026-03-15T00:00:00Z&timeMax=2026-03-25T00:00:00%2B01:00'),
    );
    expect(window.body.items.map((e: any) => e.summary)).toEqual(['late']);
    const byUid = await api('GET', events('?iCalUID=one%40x'));
    expect(byUid.body.items.map((e: any) => e.summary)).toEqual(['early']);
  });
});

describe('faults, freeBusy and watch', () => {
  it('injects each fault in Google shape, by count or by seeded probability', async () => {
    await emulator.control.addFault({ kind: 'rateLimit429', count: 1, retryAfterSeconds: 7 });
    const limited = await api('GET', events());
    expect([limited.status, reason(limited), limited.headers.get('retry-after')]).toEqual([
      429,
      'rateLimitExceeded',
      '7',
    ]);
    for (const [kind, status, why] of [
      ['rateLimit403', 403, 'rateLimitExceeded'],
      ['userRateLimit403', 403, 'userRateLimitExceeded'],
      ['quotaExceeded403', 403, 'quotaExceeded'],
      ['backendError500', 500, 'backendError'],
      ['unavailable503', 503, 'backendError'],
    ] as const) {
      await emulator.control.addFault({ kind, count: 1 });
      const answer = await api('GET', events());
      expect([answer.status, reason(answer)]).toEqual([status, why]);
    }
    expect((await api('GET', events())).status).toBe(200);

    const outcomes = async () => {
      await emulator.control.clearFaults();
      await emulator.control.addFault({ kind: 'backendError500', probability: 0.5, seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await api('GET', events())).status);
      return statuses;
    };
    const run = await outcomes();
    expect(run).toContain(500);
    expect(run).toContain(200);
    expect(await outcomes()).toEqual(run);
  });

  it('answers freeBusy with merged busy periods of opaque events', async () => {
    bearer = (await emulator.control.mintTokens({ scopes: ['https://www.googleapis.com/auth/calendar'] }))
      .access_token;
    await api('POST', events(), { body: timed('a', 10) });
    await api('POST', events(), {
      body: {
        ...timed('b', 10),
        start: { dateTime: '2026-03-10T14:30:00Z' },
        end: { dateTime: '2026-03-10T16:00:00Z' },
      },
    });
    await api('POST', events(), { body: timed('free', 11, { transparency: 'transparent' }) });
    const answer = await api('POST', '/freeBusy', {
      body: {
        timeMin: '2026-03-01T00:00:00Z',
        timeMax: '2026-04-01T00:00:00Z',
        items: [{ id: calendar }, { id: 'nobody' }],
      },
    });
    expect(answer.body.calendars[calendar]).toEqual({
      busy: [{ start: '2026-03-10T14:00:00Z', end: '2026-03-10T16:00:00Z' }],
    });
    expect(answer.body.calendars.nobody.errors).toEqual([{ domain: 'global', reason: 'notFound' }]);
  });

  it('posts sync and exists notifications without a body; stop and unknown channels', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const receiver = http.createServer((request, response) => {
      seen.push(request.headers);
      request.resume();
      response.writeHead(204).end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const address = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    try {
      const refused = await api('POST', events('/watch'), {
        body: { id: 'c1', type: 'web_hook', address: 'https://example.com/hook' },
      });
      expect([refused.status, reason(refused)]).toEqual([400, 'push.webhookUrlUnauthorized']);
      const watch = await api('POST', events('/watch'), {
        body: { id: 'c1', type: 'web_hook', address, token: 'tok', params: { ttl: '99999999' } },
      });
      expect(watch.body).toMatchObject({ kind: 'api#channel', id: 'c1', token: 'tok' });
      expect(Number(watch.body.expiration) - Date.now()).toBeLessThanOrEqual(604_800_000);
      await api('POST', events(), { body: timed('x') });
      await emulator.control.pushIdle();
      expect(
        seen.map((h) => [h['x-goog-resource-state'], h['x-goog-channel-token'], h['content-length']]),
      ).toEqual([
        ['sync', 'tok', '0'],
        ['exists', 'tok', '0'],
      ]);
      expect(seen[0]!['x-goog-message-number']).toBe('1');
      expect(seen[1]!['x-goog-channel-expiration']).toBe(
        new Date(Number(watch.body.expiration)).toUTCString(),
      );
      const wrong = await api('POST', '/channels/stop', { body: { id: 'c1', resourceId: 'other' } });
      expect(wrong.status).toBe(404);
      const stop = await api('POST', '/channels/stop', {
        body: { id: 'c1', resourceId: watch.body.resourceId },
      });
      expect(stop.status).toBe(204);
      await api('POST', events(), { body: timed('y') });
      await emulator.control.pushIdle();
      expect(seen).toHaveLength(2);
      expect((await emulator.control.deliveries()).map((d) => d.status)).toEqual([204, 204]);
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });
});

const statuses = async (calls: number, path = events()) => {
  const out: number[] = [];
  for (let i = 0; i < calls; i++) out.push((await api('GET', path)).status);
  return out;
};

describe('fault rules', () => {
  it('fails only the n-th matching call, or every call after the first few', async () => {
    await emulator.control.addFault({ kind: 'backendError500', nth: 3 });
    expect(await statuses(5)).toEqual([200, 200, 500, 200, 200]);

    await emulator.control.addFault({ kind: 'unavailable503', after: 1, count: 2, method: 'GET' });
    // A call the rule does not match is not counted.
    expect((await api('POST', events(), { body: timed('x') })).status).toBe(200);
    expect(await statuses(4)).toEqual([200, 503, 503, 200]);

    for (const bad of [{ nth: 0 }, { nth: 2, after: 1 }, { after: -1 }, { count: 1.5 }]) {
      await expect(emulator.control.addFault({ kind: 'backendError500', ...bad })).rejects.toThrow(/400/);
    }
  });

  it('tells incremental listings from full ones, and leaves other calls alone', async () => {
    const first = await api('GET', events());
    const syncToken = first.body.nextSyncToken as string;
    await emulator.control.addFault({ kind: 'rateLimit403', listing: 'sync-token', count: 2 });
    const incremental = events(`?syncToken=${encodeURIComponent(syncToken)}`);
    expect(await statuses(1)).toEqual([200]);
    expect((await api('POST', events(), { body: timed('x') })).status).toBe(200);
    const limited = await api('GET', incremental);
    expect([limited.status, reason(limited)]).toEqual([403, 'rateLimitExceeded']);
    expect(await statuses(2, incremental)).toEqual([403, 200]);

    await emulator.control.addFault({ kind: 'backendError500', listing: 'full' });
    expect(await statuses(1, incremental)).toEqual([200]);
    // events.get and freeBusy are not listings.
    const created = await api('POST', events(), { body: timed('y') });
    expect((await api('GET', `${events()}/${created.body.id as string}`)).status).toBe(200);
    expect(await statuses(2)).toEqual([500, 200]);
    await expect(
      emulator.control.addFault({ kind: 'backendError500', listing: 'delta' as 'full' }),
    ).rejects.toThrow(/listing must be/);
  });

  it('applies within a time window on the emulator clock, or on the wall clock', async () => {
    const now = Date.now();
    await emulator.control.addFault({
      kind: 'backendError500',
      count: 100,
      from: new Date(now + 60_000).toISOString(),
      until: now + 120_000,
    });
    expect(await statuses(1)).toEqual([200]);
    await emulator.control.advanceClock(90_000);
    expect(await statuses(2)).toEqual([500, 500]);
    await emulator.control.advanceClock(60_000);
    expect(await statuses(1)).toEqual([200]);

    // The same window on the wall clock has not opened, whatever the emulator's clock says.
    await emulator.control.clearFaults();
    await emulator.control.addFault({ kind: 'backendError500', clock: 'wall', from: Date.now() + 60_000 });
    expect(await statuses(1)).toEqual([200]);
    await emulator.control.addFault({ kind: 'backendError500', clock: 'wall', until: Date.now() - 1 });
    expect(await statuses(1)).toEqual([200]);
    await emulator.control.addFault({ kind: 'backendError500', clock: 'wall', from: Date.now() - 1 });
    expect(await statuses(1)).toEqual([500]);
    await expect(emulator.control.addFault({ kind: 'backendError500', from: 'soon' })).rejects.toThrow(
      /from/,
    );
  });

  it('delays an answer that is otherwise normal: the change is made at once, the answer comes late', async () => {
    await emulator.control.addFault({ kind: 'delay', delayMs: 1500, method: 'POST' });
    const started = Date.now();
    let answered = false;
    const slow = api('POST', events(), { body: timed('slow') }).then((answer) => {
      answered = true;
      return answer;
    });
    await waitFor('the delayed insert to be stored', async () =>
      (await emulator.control.storedEvents(calendar)).some((event) => event.summary === 'slow'),
    );
    // Other calls are answered meanwhile.
    expect((await api('GET', events())).status).toBe(200);
    expect(answered).toBe(false);
    const answer = await slow;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ kind: 'calendar#event', summary: 'slow' });
    const log = await emulator.control.requests();
    expect(log.find((r) => r.method === 'POST')).toMatchObject({ status: 200, delayedMs: 1500 });
    expect(log.find((r) => r.method === 'GET')!.delayedMs).toBeUndefined();

    await expect(emulator.control.addFault({ kind: 'delay' })).rejects.toThrow(/delayMs/);
    await expect(emulator.control.addFault({ kind: 'backendError500', delayMs: 5 })).rejects.toThrow(
      /delayMs/,
    );
  });

  it('keeps a delayed answer from outliving a reset', async () => {
    await emulator.control.addFault({ kind: 'delay', delayMs: 60_000 });
    const held = api('GET', events()).then(
      () => 'answered',
      () => 'dropped',
    );
    await waitFor('the held call to be logged', async () => (await emulator.control.requests()).length > 0);
    await emulator.control.reset();
    expect(await held).toBe('dropped');
  });
});

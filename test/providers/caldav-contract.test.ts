import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardedHttp } from '../../src/integrations/http/guarded-http.js';
import { OutboundGuard } from '../../src/integrations/http/outbound-guard.js';
import { CalDavClient } from '../../src/calendar/providers/caldav/caldav-client.js';
import { discoverCalendars } from '../../src/calendar/providers/caldav/caldav-discovery.js';
import { CalDavProvider } from '../../src/calendar/providers/caldav/caldav-provider.js';
import {
  PROP,
  encodePath,
  parseMultiStatus,
  propText,
} from '../../src/calendar/providers/caldav/caldav-xml.js';
import { ProviderError } from '../../src/integrations/errors.js';
import {
  CALDAV_SERVER_KINDS,
  type CalDavServer,
  calDavServerSkipReason,
  startCalDavServer,
} from '../support/caldav-servers.js';
import { bookingEvent, describeProviderContract, externalEvent, readBack } from './provider-contract.js';

const loopbackHttp = () => new GuardedHttp(new OutboundGuard({ allow: ['127.0.0.1/32'] }));

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error: unknown = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof ProviderError)) throw new Error(`expected a ProviderError, got ${String(error)}`);
  return error.code;
}

describe('caldav-xml', () => {
  it('reads multistatus with any prefixes, 404 propstats and hrefs in every spelling', () => {
    const body = `\uFEFF\n<?xml version="1.0"?>
      <x:multistatus xmlns:x="DAV:" xmlns:cal="urn:ietf:params:xml:ns:carldav:">
        <x:response><x:href>http://127.0.0.1:1/cal/a%20b.ics</x:href>
          <x:propstat><x:prop><x:getetag>"1"</x:getetag></x:prop><x:status>HTTP/1.1 200 OK</x:status></x:propstat>
          <x:propstat><x:prop><x:displayname>hidden</x:displayname></x:prop><x:status>HTTP/1.1 404 Not Found</x:status></x:propstat>
        </x:response>
        <response xmlns="DAV:"><href>a b.ics</href><status>HTTP/1.1 404 Not Found</status></response>
        <x:response><x:href>/cal/c.ics</x:href><x:propstat><x:prop>
          <cal:calendar-data>BEGIN:VCALENDAR&#13;
SUMMARY:a &amp; b&#13;
END:VCALENDAR&#13;
</cal:calendar-data></x:prop><x:status>HTTP/1.1 200 OK</x:status></x:propstat></x:response>
        <x:response><x:href>http%3A//127.0.0.1%3A1/cal/e%2520f.ics</x:href><x:propstat><x:prop>
          <cal:calendar-data><![CDATA[BEGIN:VCALENDAR]]></cal:calendar-data>
        </x:prop></x:propstat></x:response>
        <x:sync-token>data:,7</x:sync-token>
      </x:multistatus>`;
    const answer = parseMultiStatus(body, 'http://127.0.0.1:1/cal/');
    expect(answer.syncToken).toBe('data:,7');
    expect(answer.responses.map((r) => [r.path, r.status])).toEqual([
      ['/cal/a b.ics', null],
      ['/cal/a b.ics', 404],
      ['/cal/c.ics', null],
      ['/cal/e f.ics', null],
    ]);
    expect(propText(answer.responses[0], PROP.getetag)).toBe('"1"');
    expect(propText(answer.responses[0], PROP.displayname)).toBeNull();
    expect(propText(answer.responses[2], PROP.calendarData)).toBe(
      'BEGIN:VCALENDAR\r\nSUMMARY:a & b\r\nEND:VCALENDAR',
    );
    expect(propText(answer.responses[3], PROP.calendarData)).toBe('BEGIN:VCALENDAR');
    expect(() => parseMultiStatus('<a><b></a>', 'http://127.0.0.1:1/')).toThrow(ProviderError);
  });
});

describe('CalDAV outbound guard', () => {
  const refusingHttp = new GuardedHttp(new OutboundGuard({ allow: [] }));
  afterAll(() => refusingHttp.close());
  const credentials = { username: 'u', password: 'p' };

  it('refuses internal addresses before sending anything', async () => {
    for (const url of ['http://10.0.0.1/dav/', 'https://10.0.0.1/dav/', 'http://127.0.0.1:1/dav/']) {
      expect(await codeOf(discoverCalendars(refusingHttp, { url, ...credentials }))).toBe('URL_REFUSED');
      const provider = new CalDavProvider({ http: refusingHttp, collectionUrl: url, ...credentials });
      expect(await codeOf(provider.listChanges(null, new Map()))).toBe('URL_REFUSED');
    }
  });
});

describe('CalDAV client status mapping', () => {
  let answer: { status: number; headers?: Record<string, string>; body?: string } = { status: 200 };
  const seen: http.IncomingMessage[] = [];
  const server = http.createServer((request, response) => {
    seen.push(request);
    request.resume();
    response.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? '');
  });
  const client = new CalDavClient(loopbackHttp(), { username: 'zoë', password: 'pä:ss' });
  let url = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cal/x.ics`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each([
    [401, 'AUTH_FAILED'],
    [403, 'FORBIDDEN'],
    [400, 'REJECTED'],
    [415, 'REJECTED'],
    [500, 'UNAVAILABLE'],
    [502, 'UNAVAILABLE'],
  ])('maps %i on PROPFIND to %s', async (status, code) => {
    answer = { status };
    expect(await codeOf(client.propfind(url, 0, [PROP.getetag]))).toBe(code);
  });

  it('parses Retry-After, sends UTF-8 Basic credentials and the XML content type', async () => {
    answer = { status: 429, headers: { 'retry-after': '7' } };
    const error = await client.propfind(url, 1, [PROP.getetag]).catch((e: unknown) => e as ProviderError);
    expect(error).toMatchObject({ code: 'RATE_LIMITED', details: { status: 429, retryAfterMs: 7000 } });
    const request = seen.at(-1)!;
    expect(request.headers.authorization).toBe(
      `Basic ${Buffer.from('zoë:pä:ss', 'utf8').toString('base64')}`,
    );
    expect(request.headers['content-type']).toBe('application/xml; charset=utf-8');
    expect(request.headers.depth).toBe('1');
  });

  it('treats a 207 on PUT as a refusal and 412 as a precondition failure', async () => {
    answer = { status: 207, body: '<d:multistatus xmlns:d="DAV:"/>' };
    expect(await codeOf(client.put(url, 'BEGIN:VCALENDAR', { ifNoneMatch: '*' }))).toBe('REJECTED');
    answer = { status: 412 };
    expect(await client.put(url, 'BEGIN:VCALENDAR', { ifMatch: '"a"' })).toEqual({
      kind: 'precondition-failed',
    });
    expect(seen.at(-1)!.headers['if-match']).toBe('"a"');
  });
});

for (const kind of CALDAV_SERVER_KINDS) {
  const reason = calDavServerSkipReason(kind);
  describe.skipIf(reason !== undefined)(`CalDAV on ${kind}${reason ? ` (skipped: ${reason})` : ''}`, () => {
    let server: CalDavServer;
    const httpClient = loopbackHttp();
    beforeAll(async () => {
      server = await startCalDavServer(kind);
    });
    afterAll(async () => {
      await server?.stop();
      await httpClient.close();
    });

    const providerFor = (collectionUrl: string, extra: { maxBytes?: number; password?: string } = {}) =>
      new CalDavProvider({
        http: httpClient,
        collectionUrl,
        username: server.username,
        password: extra.password ?? server.password,
        ...(extra.maxBytes === undefined ? {} : { maxBytes: extra.maxBytes }),
      });

    const externalFor = (collectionUrl: string) => ({
      async put(ics: string, name = `${randomUUID()}.ics`) {
        const response = await server.request(
          'PUT',
          new URL(encodeURIComponent(name), collectionUrl).toString(),
          {
            body: ics,
            headers: { 'content-type': 'text/calendar; charset=utf-8' },
          },
        );
        const text = await response.text();
        if (![201, 204].includes(response.status))
          throw new Error(`external PUT: ${response.status} ${text}`);
      },
      async remove(remoteId: string) {
        const response = await server.request(
          'DELETE',
          new URL(encodePath(remoteId), collectionUrl).toString(),
        );
        const text = await response.text();
        if (![200, 204].includes(response.status))
          throw new Error(`external DELETE: ${response.status} ${text}`);
      },
    });

    const freshCalendar = () => server.newCalendar(`c-${randomUUID().slice(0, 8)}`);

    describeProviderContract(kind, async () => {
      const collectionUrl = await freshCalendar();
      return {
        provider: providerFor(collectionUrl),
        external: externalFor(collectionUrl),
        close: async () => {
          await (await server.request('DELETE', collectionUrl)).arrayBuffer();
        },
      };
    });

    describe('discovery', () => {
      const discover = (url: string) =>
        discoverCalendars(httpClient, { url, username: server.username, password: server.password });

      it.each([
        ['the server root', () => server.rootUrl],
        ['/.well-known/caldav', () => new URL('.well-known/caldav', server.rootUrl).toString()],
      ])('finds the calendar from %s', async (_, url) => {
        const { calendars } = await discover(url());
        const found = calendars.find((c) => c.url === server.calendarUrl);
        expect(found).toMatchObject({ displayName: 'calendar', supportsEvents: true });
        expect(found?.ctag ?? found?.syncToken).toBeTruthy();
      });

      it('returns just the calendar when given its URL', async () => {
        const { calendars } = await discover(server.calendarUrl);
        expect(calendars.map((c) => c.url)).toEqual([server.calendarUrl]);
      });
    });

    if (kind === 'xandikos') {
      it('Xandikos checks no credentials: a wrong password still reads', async () => {
        const provider = providerFor(server.calendarUrl, { password: 'wrong' });
        await expect(provider.listChanges(null, new Map())).resolves.toMatchObject({ full: true });
      });
    } else {
      it('a wrong password is AUTH_FAILED', async () => {
        const input = { url: server.rootUrl, username: server.username, password: 'wrong' };
        expect(await codeOf(discoverCalendars(httpClient, input))).toBe('AUTH_FAILED');
        const provider = providerFor(server.calendarUrl, { password: 'wrong' });
        expect(await codeOf(provider.listChanges(null, new Map()))).toBe('AUTH_FAILED');
      });
    }

    it('an answer larger than the limit is BAD_RESPONSE', async () => {
      const collectionUrl = await freshCalendar();
      await externalFor(collectionUrl).put(externalEvent(randomUUID(), 'x'.repeat(5000)));
      const provider = providerFor(collectionUrl, { maxBytes: 2000 });
      expect(await codeOf(provider.listChanges(null, new Map()))).toBe('BAD_RESPONSE');
    });

    it('a sync token the server refuses falls back to a full listing that finds deletions', async () => {
      const collectionUrl = await freshCalendar();
      const provider = providerFor(collectionUrl);
      const kept = await provider.createEvent(bookingEvent());
      const dropped = await provider.createEvent(bookingEvent());
      const listing = await provider.listChanges(null, new Map());
      const known = new Map(listing.changed.map((e) => [e.remoteId, e.etag]));
      await externalFor(collectionUrl).remove(dropped.remoteId);
      const state = JSON.parse(listing.cursor!) as { t: string | null };
      expect(state.t).toBeTruthy();
      const stale = JSON.stringify({ ...state, t: kind === 'davical' ? 'data:,999999' : `${state.t}0` });
      const changes = await provider.listChanges(stale, known);
      expect(changes).toMatchObject({ full: true, changed: [], removed: [dropped.remoteId] });
      expect([...known.keys()].sort()).toEqual([kept.remoteId, dropped.remoteId].sort());
    });

    it('lists objects under any name, skips objects without a VEVENT', async () => {
      const collectionUrl = await freshCalendar();
      const external = externalFor(collectionUrl);
      const todo = [
        'BEGIN:VCALENDAR',
        'VERSION:2.0',
        'PRODID:-//t//EN',
        'BEGIN:VTODO',
        `UID:${randomUUID()}`,
      ];
      await external.put(
        [...todo, 'DTSTAMP:20260101T000000Z', 'SUMMARY:Task', 'END:VTODO', 'END:VCALENDAR', ''].join('\r\n'),
      );
      await external.put(externalEvent(randomUUID()), 'no extension, with spaces & ümlaut');
      const provider = providerFor(collectionUrl);
      const listing = await provider.listChanges(null, new Map());
      expect(listing.changed).toHaveLength(1);
      const event = listing.changed[0]!;
      expect(event.remoteId.endsWith('/no extension, with spaces & ümlaut')).toBe(true);
      expect((await provider.getEvent(event.remoteId))?.etag).toBe(event.etag);
      await provider.deleteEvent(event.remoteId, event.etag);
      const after = await provider.listChanges(listing.cursor, new Map([[event.remoteId, event.etag]]));
      expect(after.removed).toEqual([event.remoteId]);
    });

    if (kind === 'davical') {
      it('DAViCal allows a second object with one UID: a create writes its own object beside the other', async () => {
        const collectionUrl = await freshCalendar();
        const event = bookingEvent();
        await externalFor(collectionUrl).put(externalEvent(event.uid, 'Theirs'), 'chosen-by-another-app.ics');
        const written = await providerFor(collectionUrl).createEvent(event);
        expect(written.remoteId.endsWith('/chosen-by-another-app.ics')).toBe(false);
        const read = await providerFor(collectionUrl).getEvent(written.remoteId);
        expect(readBack(read!.ics).summary.bookingId).toBe(event.bookingId);
      });
    } else {
      it('a create whose UID already lives under another name returns that object', async () => {
        const collectionUrl = await freshCalendar();
        const event = bookingEvent();
        await externalFor(collectionUrl).put(externalEvent(event.uid, 'Theirs'), 'chosen-by-another-app.ics');
        const written = await providerFor(collectionUrl).createEvent(event);
        expect(written.remoteId.endsWith('/chosen-by-another-app.ics')).toBe(true);
        const read = await providerFor(collectionUrl).getEvent(written.remoteId);
        expect(readBack(read!.ics).summary.title).toBe('Theirs');
      });
    }
  });
}

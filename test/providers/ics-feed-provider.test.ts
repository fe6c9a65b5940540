import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KnownEvents, RemoteChanges } from '../../src/calendar/port/provider.js';
import { GuardedHttp } from '../../src/integrations/http/guarded-http.js';
import { OutboundGuard } from '../../src/integrations/http/outbound-guard.js';
import { IcsFeedProvider } from '../../src/calendar/providers/ics/ics-feed-provider.js';
import { ProviderError } from '../../src/integrations/errors.js';

type FeedEvent = { uid: string; summary: string; start: string };

function vevent(event: FeedEvent): string[] {
  return [
    'BEGIN:VEVENT',
    `UID:${event.uid}`,
    'DTSTAMP:20260501T000000Z',
    `DTSTART:${event.start}`,
    `DURATION:PT1H`,
    `SUMMARY:${event.summary}`,
    'END:VEVENT',
  ];
}

function calendar(events: FeedEvent[]): string {
  const lines = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//Test//Feed//EN', ...events.flatMap(vevent)];
  return [...lines, 'END:VCALENDAR', ''].join('\r\n');
}

type Answer = {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Withholds the answer this long. */
  delayMs?: number;
};

/**
 * A feed host on 127.0.0.1: serves `body` with an ETag and Last-Modified, answers conditional GETs
 * with 304, and records what it was asked. `answer` overrides it for one test.
 */
class FeedServer {
  body = '';
  etag = '"v1"';
  lastModified = 'Mon, 18 May 2026 06:00:00 GMT';
  answer: Answer | undefined;
  readonly requests: http.IncomingHttpHeaders[] = [];
  readonly #server = http.createServer((request, response) => {
    this.requests.push(request.headers);
    if (this.answer) {
      const { status = 200, body = '', headers = {}, delayMs = 0 } = this.answer;
      const timer = setTimeout(() => response.writeHead(status, headers).end(body), delayMs);
      response.on('close', () => clearTimeout(timer));
      return;
    }
    const validators = { etag: this.etag, 'last-modified': this.lastModified };
    if (request.headers['if-none-match'] === this.etag) {
      response.writeHead(304, validators).end();
      return;
    }
    response.writeHead(200, { ...validators, 'content-type': 'text/calendar; charset=utf-8' }).end(this.body);
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  url(path = '/calendar/secret-token/feed.ics'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProviderError) return error;
    throw error;
  }
  throw new Error('expected a ProviderError');
}

function knownFrom(changes: RemoteChanges): Map<string, string | null> {
  return new Map(changes.changed.map((event) => [event.remoteId, event.etag]));
}

const A: FeedEvent = { uid: 'a@example.com', summary: 'Dentist', start: '20260520T090000Z' };
const B: FeedEvent = { uid: 'b@example.com', summary: 'Lunch', start: '20260521T120000Z' };
const C: FeedEvent = { uid: 'c@example.com', summary: 'Flight', start: '20260522T070000Z' };

describe('IcsFeedProvider', () => {
  let server: FeedServer;
  let guardedHttp: GuardedHttp;
  const none: KnownEvents = new Map();

  beforeAll(async () => {
    server = await new FeedServer().start();
    server.body = calendar([A, B]);
    guardedHttp = new GuardedHttp(new OutboundGuard({ allow: ['127.0.0.1/32'] }), { connectTimeoutMs: 1000 });
  });
  afterAll(async () => {
    await guardedHttp?.close();
    await server?.stop();
  });
  afterEach(() => {
    server.answer = undefined;
    server.body = calendar([A, B]);
    server.etag = '"v1"';
    server.requests.length = 0;
  });

  function provider(url = server.url(), options: { timeoutMs?: number; maxBytes?: number } = {}) {
    return new IcsFeedProvider({ http: guardedHttp, url, ...options });
  }

  it('is read-only and refuses writes with FORBIDDEN', async () => {
    const feed = provider();
    expect(feed.capabilities).toEqual({ write: false, incremental: false, push: false });
    expect((await failure(feed.createEvent())).code).toBe('FORBIDDEN');
    expect((await failure(feed.updateEvent())).code).toBe('FORBIDDEN');
    expect((await failure(feed.deleteEvent())).code).toBe('FORBIDDEN');
    expect(server.requests).toHaveLength(0);
  });

  it('lists every event on the first fetch, then asks conditionally and reports nothing on a 304', async () => {
    server.body = calendar([A, B]);
    const feed = provider();
    const first = await feed.listChanges(null, none);
    expect(first.full).toBe(true);
    expect(first.removed).toEqual([]);
    expect(first.changed.map((event) => event.remoteId).sort()).toEqual([A.uid, B.uid]);
    for (const event of first.changed) {
      expect(event.etag).toMatch(/^[0-9a-f]{64}$/);
      expect(event.ics).toContain(`UID:${event.remoteId}`);
      expect(event.ics).toMatch(/^BEGIN:VCALENDAR/);
    }
    expect(JSON.parse(first.cursor ?? 'null')).toEqual({ etag: '"v1"', lastModified: server.lastModified });
    expect(server.requests[0]?.['if-none-match']).toBeUndefined();

    const second = await feed.listChanges(first.cursor, knownFrom(first));
    expect(second).toEqual({ changed: [], removed: [], full: false, cursor: first.cursor });
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]?.['if-none-match']).toBe('"v1"');
    expect(server.requests[1]?.['if-modified-since']).toBe(server.lastModified);
  });

  it('reports changed, added and removed events against what is known', async () => {
    server.body = calendar([A, B]);
    const feed = provider();
    const first = await feed.listChanges(null, none);
    const known = knownFrom(first);
    const aEtag = known.get(A.uid);

    server.body = calendar([{ ...A, summary: 'Dentist (moved)', start: '20260520T100000Z' }, C]);
    server.etag = '"v2"';
    const next = await feed.listChanges(first.cursor, known);
    expect(next.full).toBe(true);
    expect(next.changed.map((event) => event.remoteId).sort()).toEqual([A.uid, C.uid]);
    expect(next.changed.find((event) => event.remoteId === A.uid)?.etag).not.toBe(aEtag);
    expect(next.removed).toEqual([B.uid]);
    expect(JSON.parse(next.cursor ?? 'null')).toMatchObject({ etag: '"v2"' });

    // Without validators the whole feed comes every time; unchanged events are still not reported.
    server.answer = { body: server.body, headers: { 'content-type': 'text/calendar' } };
    const plain = await feed.listChanges(null, knownFrom(next));
    expect(plain).toEqual({ changed: [], removed: [], full: true, cursor: null, warnings: [] });
  });

  it('accepts a feed without events as empty, so everything known is removed', async () => {
    server.body = calendar([]);
    const changes = await provider().listChanges(null, new Map([[A.uid, 'x']]));
    expect(changes).toMatchObject({ changed: [], removed: [A.uid], full: true });
  });

  it('finds one event by UID, or null', async () => {
    server.body = calendar([A, B]);
    const feed = provider();
    expect((await feed.getEvent(B.uid))?.ics).toContain('SUMMARY:Lunch');
    expect(await feed.getEvent('nobody@example.com')).toBeNull();
  });

  it('refuses an HTML login page and JSON as BAD_RESPONSE with a clear message', async () => {
    server.answer = {
      body: '<!DOCTYPE html><html><body><form>Sign in</form></body></html>',
      headers: { 'content-type': 'text/html' },
    };
    const html = await failure(provider().listChanges(null, none));
    expect(html.code).toBe('BAD_RESPONSE');
    expect(html.message).toMatch(/HTML page/);

    server.answer = { body: '{"error":"unauthorized"}', headers: { 'content-type': 'application/json' } };
    const json = await failure(provider().listChanges(null, none));
    expect(json.code).toBe('BAD_RESPONSE');
    expect(json.message).toMatch(/JSON/);
  });

  it('refuses a feed larger than the limit, naming it', async () => {
    server.body = calendar(Array.from({ length: 50 }, (_, i) => ({ ...A, uid: `e${i}@example.com` })));
    const small = await failure(provider(server.url(), { maxBytes: 2000 }).listChanges(null, none));
    expect(small.code).toBe('BAD_RESPONSE');
    expect(small.message).toMatch(/2000 bytes/);

    server.answer = { body: `BEGIN:VCALENDAR\r\n${'X-PAD:'.padEnd(70, 'x')}\r\n`.repeat(150_000) };
    const big = await failure(provider().listChanges(null, none));
    expect(big.code).toBe('BAD_RESPONSE');
    expect(big.message).toMatch(new RegExp(`${10 * 1024 * 1024} bytes`));
  });

  it('maps HTTP failures onto provider error codes', async () => {
    const cases: [number, string][] = [
      [401, 'AUTH_FAILED'],
      [403, 'FORBIDDEN'],
      [404, 'NOT_FOUND'],
      [410, 'NOT_FOUND'],
      [429, 'RATE_LIMITED'],
      [500, 'UNAVAILABLE'],
      [503, 'UNAVAILABLE'],
    ];
    for (const [status, code] of cases) {
      server.answer = { status, body: 'no', headers: { 'retry-after': '7' } };
      const error = await failure(provider().listChanges(null, none));
      expect([status, error.code]).toEqual([status, code]);
      expect(error.details.status).toBe(status);
    }
    server.answer = { status: 429, headers: { 'retry-after': '7' } };
    expect((await failure(provider().listChanges(null, none))).details.retryAfterMs).toBe(7000);
  });

  it('refuses a redirect to an internal address and a guard that does not allow loopback', async () => {
    server.answer = { status: 302, headers: { location: 'http://10.0.0.1/feed.ics' } };
    expect((await failure(provider().listChanges(null, none))).code).toBe('URL_REFUSED');

    server.answer = undefined;
    server.requests.length = 0;
    const strict = new GuardedHttp(new OutboundGuard({ allow: [] }));
    try {
      const feed = new IcsFeedProvider({ http: strict, url: server.url() });
      expect((await failure(feed.listChanges(null, none))).code).toBe('URL_REFUSED');
      const webcal = new IcsFeedProvider({ http: strict, url: server.url().replace(/^http/, 'webcal') });
      expect((await failure(webcal.listChanges(null, none))).code).toBe('URL_REFUSED');
      expect(server.requests).toHaveLength(0);
    } finally {
      await strict.close();
    }
  });

  it('accepts webcal:// URLs', async () => {
    server.body = calendar([A]);
    const feed = provider(server.url().replace(/^http:/, 'webcal:'));
    const changes = await feed.listChanges(null, none);
    expect(changes.changed.map((event) => event.remoteId)).toEqual([A.uid]);
    expect((await feed.listChanges(changes.cursor, knownFrom(changes))).full).toBe(false);
  });

  it('gives up on a slow server with TIMEOUT', async () => {
    server.answer = { body: calendar([A]), delayMs: 2000 };
    const started = Date.now();
    const error = await failure(provider(server.url(), { timeoutMs: 200 }).listChanges(null, none));
    expect(error.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

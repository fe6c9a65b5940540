import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import ICAL from 'ical.js';
import { createHash } from 'node:crypto';
import { beforeAll, expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import type { RequestOptions } from '../support/test-app.js';

// Bookings stamp updated_at with the real time, and cancellations age out of the feed by it.
const NOW = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const LONG_TITLE =
  'Quarterly planning — Größenordnung, budget; room set-up ✓ and a title long enough to fold';

function unfold(text: string): string[] {
  return text.replace(/\r\n[ \t]/g, '').split('\r\n');
}

describeOnBackends(
  'resource feeds',
  (t) => {
    let feeds: FastifyInstance;
    let slot = 0;

    beforeAll(async () => {
      feeds = t().app;
      return async () => {
        if (feeds !== t().app) await feeds.close();
      };
    });

    function feedRequest(method: string, url: string, options: RequestOptions = {}) {
      const key = options.key === undefined ? t().adminKey : options.key;
      return feeds.inject({
        method: method as 'GET',
        url,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...options.headers },
      });
    }

    async function makeResource(timeZone = 'Europe/Berlin'): Promise<string> {
      return createOpenResource(t(), { name: 'Room 7, “Blue”', kind: 'room', time_zone: timeZone });
    }

    /** A booking an hour long, a few hours further on each time, so no two collide. */
    async function book(resourceIds: string[], options: { title?: string; startsAt?: number } = {}) {
      slot++;
      const start = options.startsAt ?? t().clock.now + DAY + slot * 3 * HOUR;
      const res = await t().request('POST', '/bookings', {
        body: {
          resource_ids: resourceIds,
          start_time: new Date(start).toISOString(),
          end_time: new Date(start + HOUR).toISOString(),
          title: options.title ?? `Booking ${slot}`,
          ignore_availability: true,
        },
      });
      expect(res.statusCode).toBe(201);
      return res.json<{ booking_id: string; start_time: string; end_time: string }>();
    }

    async function createFeed(resourceId: string, options: RequestOptions = {}) {
      const res = await feedRequest('POST', `/resources/${resourceId}/feeds`, options);
      expect(res.statusCode).toBe(201);
      const body = res.json<{ feed_id: string; resource_id: string; url: string }>();
      return { ...body, path: new URL(body.url).pathname };
    }

    function events(res: LightMyRequestResponse): ICAL.Component[] {
      const calendar = new ICAL.Component(ICAL.parse(res.body) as unknown[]);
      return calendar.getAllSubcomponents('vevent');
    }

    it('serves the bookings as RFC 5545 iCalendar without an API key', async () => {
      const room = await makeResource();
      const other = await makeResource();
      const first = await book([room], { title: LONG_TITLE });
      const shared = await book([room, other]);
      const elsewhere = await book([other]);
      const cancelled = await book([room], { title: 'Called off' });
      const cancel = await t().request('POST', `/bookings/${cancelled.booking_id}/cancel`, { body: {} });
      expect(cancel.statusCode).toBe(200);
      const feed = await createFeed(room);

      const res = await feedRequest('GET', feed.path, { key: null });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/calendar; charset=utf-8');
      expect(res.headers['cache-control']).toBe('private, max-age=300');
      expect(res.headers.etag).toMatch(/^"[\w-]+"$/);

      const text = res.body;
      expect(text.endsWith('\r\n')).toBe(true);
      const physical = text.slice(0, -2).split('\r\n');
      for (const line of physical) {
        expect(line).not.toMatch(/[\r\n]/);
        expect(Buffer.byteLength(line, 'utf8')).toBeLessThanOrEqual(75);
      }
      expect(physical.some((line) => line.startsWith(' '))).toBe(true);
      expect(unfold(text)).toContain('X-WR-CALNAME:Room 7\\, “Blue”');

      const vevents = events(res);
      const byUid = new Map(vevents.map((event) => [event.getFirstPropertyValue('uid'), event]));
      expect([...byUid.keys()].sort()).toEqual(
        [first, shared, cancelled].map((booking) => `${booking.booking_id}@sched`).sort(),
      );
      expect(byUid.has(`${elsewhere.booking_id}@sched`)).toBe(false);
      for (const booking of [first, shared, cancelled]) {
        const event = new ICAL.Event(byUid.get(`${booking.booking_id}@sched`));
        expect(event.startDate.toJSDate().toISOString()).toBe(new Date(booking.start_time).toISOString());
        expect(event.endDate.toJSDate().toISOString()).toBe(new Date(booking.end_time).toISOString());
      }
      const firstEvent = byUid.get(`${first.booking_id}@sched`);
      expect(firstEvent?.getFirstPropertyValue('summary')).toBe(LONG_TITLE);
      expect(firstEvent?.getFirstPropertyValue('status')).toBe('CONFIRMED');
      expect(byUid.get(`${cancelled.booking_id}@sched`)?.getFirstPropertyValue('status')).toBe('CANCELLED');
    });

    it('answers 304 to a matching If-None-Match and a new ETag once the bookings change', async () => {
      const room = await makeResource();
      await book([room]);
      const feed = await createFeed(room);
      const first = await feedRequest('GET', feed.path, { key: null });
      const etag = first.headers.etag as string;

      const again = await feedRequest('GET', feed.path, { key: null, headers: { 'if-none-match': etag } });
      expect(again.statusCode).toBe(304);
      expect(again.body).toBe('');
      expect(again.headers.etag).toBe(etag);
      const listed = await feedRequest('GET', feed.path, {
        key: null,
        headers: { 'if-none-match': `"other", W/${etag}` },
      });
      expect(listed.statusCode).toBe(304);

      await book([room]);
      const changed = await feedRequest('GET', feed.path, { key: null, headers: { 'if-none-match': etag } });
      expect(changed.statusCode).toBe(200);
      expect(changed.headers.etag).not.toBe(etag);
      expect(events(changed)).toHaveLength(2);
    });

    it('leaves out bookings that ended more than 90 days ago', async () => {
      const room = await makeResource('UTC');
      const old = await book([room], { startsAt: t().clock.now - 91 * DAY });
      const recent = await book([room], { startsAt: t().clock.now - 89 * DAY });
      const feed = await createFeed(room);
      const uids = events(await feedRequest('GET', feed.path, { key: null })).map((event) =>
        event.getFirstPropertyValue('uid'),
      );
      expect(uids).toEqual([`${recent.booking_id}@sched`]);
      expect(uids).not.toContain(`${old.booking_id}@sched`);
    });

    it('builds the URL on the host the caller used and keeps only a hash of the secret', async () => {
      const room = await makeResource();
      const feed = await createFeed(room, { headers: { host: 'cal.example.com' } });
      expect(feed.url).toMatch(/^http:\/\/cal\.example\.com\/feeds\/[A-Za-z0-9_-]{43}\.ics$/);
      const secret = feed.path.slice('/feeds/'.length, -'.ics'.length);
      const rows = await t()
        .database.db.selectFrom('resource_feeds')
        .selectAll()
        .where('resource_id', '=', room)
        .execute();
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(secret);
      expect(rows[0]?.secret_hash).toBe(createHash('sha256').update(secret).digest('hex'));
      const audit = await t()
        .database.db.selectFrom('audit_log')
        .selectAll()
        .where('target_id', '=', feed.feed_id)
        .execute();
      expect(audit.map((entry) => entry.action)).toEqual(['feed.created']);
      expect(JSON.stringify(audit)).not.toContain(secret);
    });

    it('lists active feeds without their URLs and revokes one so its URL is a 404 at once', async () => {
      const room = await makeResource();
      const kept = await createFeed(room);
      const revoked = await createFeed(room);
      expect((await feedRequest('GET', revoked.path, { key: null })).statusCode).toBe(200);

      const del = await feedRequest('DELETE', `/resources/${room}/feeds/${revoked.feed_id}`);
      expect(del.statusCode).toBe(204);
      const gone = await feedRequest('GET', revoked.path, { key: null });
      expect(gone.statusCode).toBe(404);
      expect(gone.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(gone.json().code).toBe('FEED_NOT_FOUND');
      expect((await feedRequest('GET', kept.path, { key: null })).statusCode).toBe(200);
      const again = await feedRequest('DELETE', `/resources/${room}/feeds/${revoked.feed_id}`);
      expect(again.statusCode).toBe(404);
      expect(again.json().code).toBe('FEED_NOT_FOUND');

      const list = await feedRequest('GET', `/resources/${room}/feeds`);
      expect(list.statusCode).toBe(200);
      expect(list.json()).toEqual({
        feeds: [{ feed_id: kept.feed_id, resource_id: room, created_at: expect.any(String) }],
        next_cursor: null,
      });
      const audit = await t()
        .database.db.selectFrom('audit_log')
        .select('action')
        .where('target_id', '=', revoked.feed_id)
        .orderBy('at')
        .execute();
      expect(audit.map((entry) => entry.action)).toEqual(['feed.created', 'feed.revoked']);
    });

    it('answers 404 for unknown and malformed secrets', async () => {
      const unknown = await feedRequest('GET', `/feeds/${'A'.repeat(43)}.ics`, { key: null });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json().code).toBe('FEED_NOT_FOUND');
      expect((await feedRequest('GET', '/feeds/not-a-secret.ics', { key: null })).statusCode).toBe(404);
    });

    it('keeps feeds within the organization and the scopes', async () => {
      const room = await makeResource();
      const feed = await createFeed(room);
      const outsider = await t().keyFor('feeds-other-org', ['admin']);
      const create = await feedRequest('POST', `/resources/${room}/feeds`, { key: outsider });
      expect(create.statusCode).toBe(404);
      expect(create.json().code).toBe('RESOURCE_NOT_FOUND');
      expect((await feedRequest('GET', `/resources/${room}/feeds`, { key: outsider })).statusCode).toBe(404);
      const del = await feedRequest('DELETE', `/resources/${room}/feeds/${feed.feed_id}`, { key: outsider });
      expect(del.statusCode).toBe(404);
      expect((await feedRequest('GET', feed.path, { key: null })).statusCode).toBe(200);

      const reader = await t().keyFor('acme', ['read']);
      expect((await feedRequest('POST', `/resources/${room}/feeds`, { key: reader })).statusCode).toBe(403);
      expect((await feedRequest('GET', `/resources/${room}/feeds`, { key: reader })).statusCode).toBe(200);
      expect((await feedRequest('POST', `/resources/${room}/feeds`, { key: null })).statusCode).toBe(401);
    });

    it('stops serving the feed of a deleted resource', async () => {
      const room = await makeResource();
      const feed = await createFeed(room);
      expect((await t().request('DELETE', `/resources/${room}`)).statusCode).toBe(204);
      expect((await feedRequest('GET', feed.path, { key: null })).statusCode).toBe(404);
    });
  },
  NOW,
);

import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

// Monday 2026-05-18 06:00Z. Resources are open around the clock, in UTC.
const NOW = '2026-05-18T06:00:00Z';
const MINUTE = 60_000;

type Json = Record<string, unknown>;

/** A slot's start in UTC with a Z, whatever offset it was given in. */
const utc = (slot: Json) => new Date(slot.start_time as string).toISOString().replace('.000Z', 'Z');

/** Every string anywhere in a JSON value, keys included. */
function allStrings(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (Array.isArray(value)) value.forEach((item) => allStrings(item, into));
  else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      into.push(key);
      allStrings(item, into);
    }
  }
  return into;
}

/** Asserts that no resource id or name, and no booking title, appears anywhere in a public answer. */
function expectNothingInternal(body: string, secrets: string[]) {
  const strings = allStrings(JSON.parse(body)).join('\n');
  for (const secret of secrets) expect(strings).not.toContain(secret);
  expect(strings).not.toContain('resource');
}

for (const backend of backends) {
  const suffix = backend.skipReason ? ` — SKIPPED: ${backend.skipReason}` : '';
  describe.skipIf(backend.skipReason)(
    `organizations, booking pages and public booking on ${backend.name}${suffix}`,
    () => {
      let t: TestApp;
      let team: string[];
      const names = ['Dr. Ada Secretname', 'Dr. Bo Hiddenname', 'Dr. Cy Privatename'];
      let pageId: string;

      const pub = (
        method: string,
        url: string,
        options: { body?: unknown; headers?: Record<string, string>; query?: Record<string, string> } = {},
      ) => t.request(method, url, { ...options, key: null });

      beforeAll(async () => {
        t = await startTestApp(backend, NOW, { env: { SCHED_PUBLIC_RATE_LIMIT: '1000000' } });
        team = [];
        for (const name of names)
          team.push(await createOpenResource(t, { name, kind: 'person', time_zone: 'UTC' }));
        // A calendar-looking booking of another kind on the first member, whose title must never leak.
        const other = await createOpenResource(t, { name: 'Room Unlisted', kind: 'room', time_zone: 'UTC' });
        const res = await t.request('POST', '/bookings', {
          body: {
            resource_ids: [other],
            start_time: '2026-05-19T09:00:00Z',
            end_time: '2026-05-19T10:00:00Z',
            title: 'Board meeting about layoffs',
          },
        });
        expect(res.statusCode, res.body).toBe(201);
      }, 60_000);
      afterAll(async () => t?.close());

      describe('organization', () => {
        it('has the slug its bootstrap name made, a zone and empty branding', async () => {
          const res = await t.request('GET', '/organization');
          expect(res.statusCode, res.body).toBe(200);
          expect(res.json()).toMatchObject({
            name: 'acme',
            slug: 'acme',
            time_zone: 'UTC',
            branding: { logo_url: null, accent_color: null },
          });
        });

        it('PATCH changes the zone and branding; null clears a branding field', async () => {
          const res = await t.request('PATCH', '/organization', {
            body: {
              time_zone: 'Europe/Berlin',
              branding: { logo_url: 'https://cdn.example.com/acme.png', accent_color: '#0a7cff' },
            },
          });
          expect(res.statusCode, res.body).toBe(200);
          expect(res.json()).toMatchObject({
            time_zone: 'Europe/Berlin',
            branding: { logo_url: 'https://cdn.example.com/acme.png', accent_color: '#0a7cff' },
          });
          const cleared = await t.request('PATCH', '/organization', {
            body: { branding: { logo_url: null } },
          });
          expect(cleared.json()).toMatchObject({ branding: { logo_url: null, accent_color: '#0a7cff' } });
          const audit = await t.database.db
            .selectFrom('audit_log')
            .select('action')
            .where('action', '=', 'organization.updated')
            .execute();
          expect(audit.length).toBe(2);
        });

        it('refuses bad slugs, reserved ones, taken ones, bad colours and non-https logos, naming the field', async () => {
          await t.keyFor('beta', ['read']);
          const cases: [Json, number, string][] = [
            [{ slug: 'Acme' }, 400, 'slug'],
            [{ slug: '-acme' }, 400, 'slug'],
            [{ slug: 'manage' }, 400, 'slug'],
            [{ branding: { accent_color: 'red' } }, 400, 'branding.accent_color'],
            [{ branding: { logo_url: 'http://cdn.example.com/a.png' } }, 400, 'branding.logo_url'],
            [{ time_zone: 'Mars/Base' }, 400, 'time_zone'],
            [{ name: 'beta' }, 409, ''],
            [{ slug: 'beta' }, 409, ''],
          ];
          for (const [body, status, field] of cases) {
            const res = await t.request('PATCH', '/organization', { body });
            expect(res.statusCode, `${JSON.stringify(body)}: ${res.body}`).toBe(status);
            if (field) expect(res.json().errors.map((e: { field: string }) => e.field)).toContain(field);
            else expect(res.json().code).toBe(body.slug ? 'SLUG_TAKEN' : 'NAME_TAKEN');
          }
        });

        it('PATCH needs the admin scope', async () => {
          const writer = await t.keyFor('acme', ['read', 'write']);
          const res = await t.request('PATCH', '/organization', { key: writer, body: { time_zone: 'UTC' } });
          expect(res.statusCode).toBe(403);
          const read = await t.request('GET', '/organization', { key: writer });
          expect(read.statusCode).toBe(200);
        });

        it('back to UTC for the rest of the suite', async () => {
          const res = await t.request('PATCH', '/organization', { body: { time_zone: 'UTC' } });
          expect(res.json().time_zone).toBe('UTC');
        });
      });

      describe('booking pages', () => {
        it('creates a round-robin page with questions; its url is the public page', async () => {
          const res = await t.request('POST', '/booking-pages', {
            body: {
              slug: 'intro',
              title: 'Intro call',
              description: 'Twenty minutes to get to know each other',
              durations_minutes: [30, 60],
              resource_ids: team,
              assign: 'one',
              location: { kind: 'video', value: 'https://meet.example.com/acme-intro' },
              questions: [
                {
                  key: 'reason',
                  label: 'What would you like to talk about?',
                  kind: 'long_text',
                  required: true,
                },
                { key: 'plan', label: 'Plan', kind: 'select', options: ['Basic', 'Pro'] },
                { key: 'consent', label: 'I agree to be contacted', kind: 'checkbox' },
              ],
            },
          });
          expect(res.statusCode, res.body).toBe(201);
          const page = res.json();
          pageId = page.booking_page_id;
          expect(page).toMatchObject({
            slug: 'intro',
            assign: 'one',
            requires_confirmation: false,
            hold_minutes: 5,
            window_days: 60,
            published: true,
            interval_minutes: null,
            resource_ids: team,
          });
          expect(page.url).toMatch(/\/book\/acme\/intro$/);
          expect(page.questions[1]).toEqual({
            key: 'plan',
            label: 'Plan',
            kind: 'select',
            required: false,
            options: ['Basic', 'Pro'],
          });
        });

        it('refuses a taken slug, bad questions and unknown resources', async () => {
          const base = { title: 'X', durations_minutes: [30], resource_ids: team };
          const taken = await t.request('POST', '/booking-pages', { body: { ...base, slug: 'intro' } });
          expect(taken.statusCode).toBe(409);
          expect(taken.json().code).toBe('SLUG_TAKEN');
          const cases: [Json, string][] = [
            [{ questions: [{ key: 'plan', label: 'Plan', kind: 'select' }] }, 'questions[0].options'],
            [{ questions: [{ key: 'a', label: 'A', kind: 'text', options: ['x'] }] }, 'questions[0].options'],
            [
              {
                questions: [
                  { key: 'a', label: 'A', kind: 'text' },
                  { key: 'a', label: 'B', kind: 'text' },
                ],
              },
              'questions[1].key',
            ],
            [{ questions: [{ key: 'a', label: 'A', kind: 'radio' }] }, 'questions[0].kind'],
            [{ durations_minutes: [30, 30] }, 'durations_minutes[1]'],
            [{ durations_minutes: ['30'] }, 'durations_minutes[0]'],
            [{ assign: 'some' }, 'assign'],
            [{ slug: 'Has Space' }, 'slug'],
          ];
          for (const [extra, field] of cases) {
            const res = await t.request('POST', '/booking-pages', {
              body: { ...base, slug: 'other', ...extra },
            });
            expect(res.statusCode, res.body).toBe(400);
            const fields = res
              .json()
              .errors.map((e: { field: string }) => e.field)
              .join(' ');
            expect(fields.replaceAll('/', '.').replace(/^\./, ''), res.body).toContain(
              field.replaceAll('/', '.'),
            );
          }
          const unknown = await t.request('POST', '/booking-pages', {
            body: { ...base, slug: 'other', resource_ids: ['00000000-0000-4000-8000-000000000000'] },
          });
          expect(unknown.statusCode).toBe(404);
          const stored = await t.database.db.selectFrom('booking_pages').select('slug').execute();
          expect(stored.map((row) => row.slug)).toEqual(['intro']);
        });

        it('lists, reads and patches; another organization sees none of it', async () => {
          const list = await t.request('GET', '/booking-pages');
          expect(list.statusCode).toBe(200);
          expect(list.json().booking_pages.map((p: Json) => p.slug)).toEqual(['intro']);
          const patched = await t.request('PATCH', `/booking-pages/${pageId}`, {
            body: { hold_minutes: 10 },
          });
          expect(patched.statusCode, patched.body).toBe(200);
          expect(patched.json()).toMatchObject({ hold_minutes: 10, title: 'Intro call' });
          const beta = await t.keyFor('beta', ['read', 'write']);
          expect((await t.request('GET', `/booking-pages/${pageId}`, { key: beta })).statusCode).toBe(404);
          expect((await t.request('DELETE', `/booking-pages/${pageId}`, { key: beta })).statusCode).toBe(404);
          expect((await t.request('GET', '/booking-pages', { key: beta })).json().booking_pages).toEqual([]);
        });
      });

      describe('public endpoints', () => {
        const secrets = () => [...team, ...names, 'Board meeting'];

        it('shows the page without anything internal', async () => {
          const res = await pub('GET', '/public/acme/intro');
          expect(res.statusCode, res.body).toBe(200);
          expect(res.json()).toMatchObject({
            title: 'Intro call',
            durations_minutes: [30, 60],
            location: { kind: 'video' },
            time_zone: 'UTC',
            organization: { name: 'acme', branding: { accent_color: '#0a7cff' } },
          });
          expect(res.body).not.toContain('meet.example.com');
          expectNothingInternal(res.body, secrets());
          expect((await pub('GET', '/public/acme/nope')).statusCode).toBe(404);
          expect((await pub('GET', '/public/nobody/intro')).statusCode).toBe(404);
        });

        it('offers the slots GET /availability finds for any of the members, in the asked zone', async () => {
          const window = { start: '2026-05-19T08:00:00Z', end: '2026-05-19T12:00:00Z' };
          const res = await pub('GET', '/public/acme/intro/slots', {
            query: { ...window, duration_minutes: '30', time_zone: 'America/New_York' },
          });
          expect(res.statusCode, res.body).toBe(200);
          const availability = await t.request('GET', '/availability', {
            query: {
              resource_ids: team.join(','),
              ...window,
              duration_minutes: '30',
              mode: 'any',
              time_zone: 'America/New_York',
            },
          });
          const expected = availability
            .json()
            .slots.map((s: Json) => ({ start_time: s.start_time, end_time: s.end_time }));
          expect(res.json()).toEqual({ time_zone: 'America/New_York', slots: expected });
          expect(expected[0].start_time).toBe('2026-05-19T04:00:00-04:00');
          expectNothingInternal(res.body, secrets());
          const bad = await pub('GET', '/public/acme/intro/slots', {
            query: { ...window, duration_minutes: '45' },
          });
          expect(bad.statusCode).toBe(400);
          expect(bad.json().errors[0].field).toBe('duration_minutes');
        });

        it('offers nothing before now or beyond the page window', async () => {
          const past = await pub('GET', '/public/acme/intro/slots', {
            query: { start: '2026-05-17T00:00:00Z', end: '2026-05-18T07:00:00Z' },
          });
          expect(past.json().slots.map(utc)).toEqual(['2026-05-18T06:00:00Z', '2026-05-18T06:30:00Z']);
          const beyond = await pub('GET', '/public/acme/intro/slots', {
            query: { start: '2026-07-17T05:00:00Z', end: '2026-07-17T07:00:00Z' },
          });
          expect(beyond.json().slots.map(utc)).toEqual(['2026-07-17T05:00:00Z', '2026-07-17T05:30:00Z']);
        });

        const attendee = (n: number) => ({
          name: `Guest ${n}`,
          email: `guest${n}@example.com`,
          time_zone: 'Europe/Paris',
        });

        it('checks required answers and the kinds of answers, naming answers.<key>', async () => {
          const base = { start_time: '2026-05-20T09:00:00Z', duration_minutes: 30, attendee: attendee(0) };
          const cases: [Json, string][] = [
            [{}, 'answers.reason'],
            [{ answers: { reason: '' } }, 'answers.reason'],
            [{ answers: { reason: 'x', plan: 'Enterprise' } }, 'answers.plan'],
            [{ answers: { reason: 'x', consent: 'yes' } }, 'answers.consent'],
            [{ answers: { reason: 'x', color: 'blue' } }, 'answers.color'],
          ];
          for (const [extra, field] of cases) {
            const res = await pub('POST', '/public/acme/intro/bookings', { body: { ...base, ...extra } });
            expect(res.statusCode, res.body).toBe(400);
            expect(res.json().errors.map((e: Json) => e.field)).toContain(field);
          }
          const count = await t.database.db.selectFrom('public_bookings').select('booking_id').execute();
          expect(count).toEqual([]);
        });

        let manageUrl = '';
        it('books one member at a time, fairly, until none is free; 409 names no one', async () => {
          const chosen: string[] = [];
          for (let n = 1; n <= 3; n++) {
            const res = await pub('POST', '/public/acme/intro/bookings', {
              body: {
                start_time: '2026-05-20T09:00:00Z',
                duration_minutes: 30,
                attendee: attendee(n),
                answers: { reason: 'Pricing', plan: 'Pro', consent: true },
                guests: [`friend${n}@example.com`],
              },
            });
            expect(res.statusCode, res.body).toBe(201);
            const body = res.json();
            expect(body).toMatchObject({
              status: 'confirmed',
              start_time: '2026-05-20T09:00:00Z',
              end_time: '2026-05-20T09:30:00Z',
            });
            expect(Object.keys(body).sort()).toEqual([
              'booking_id',
              'end_time',
              'manage_url',
              'start_time',
              'status',
            ]);
            expect(body.manage_url).toMatch(/\/manage\/[A-Za-z0-9_-]{43}$/);
            if (n === 1) manageUrl = body.manage_url;
            const booking = (await t.request('GET', `/bookings/${body.booking_id}`)).json();
            expect(booking.attendees).toEqual([
              { email: `guest${n}@example.com`, name: `Guest ${n}` },
              { email: `friend${n}@example.com` },
            ]);
            expect(booking.metadata).toMatchObject({
              booking_page_id: pageId,
              answers: { reason: 'Pricing', plan: 'Pro', consent: true },
            });
            chosen.push(...booking.resource_ids);
          }
          expect([...chosen].sort()).toEqual([...team].sort());
          const full = await pub('POST', '/public/acme/intro/bookings', {
            body: {
              start_time: '2026-05-20T09:00:00Z',
              duration_minutes: 30,
              attendee: attendee(4),
              answers: { reason: 'x' },
            },
          });
          expect(full.statusCode, full.body).toBe(409);
          expect(full.json().code).toBe('SLOT_UNAVAILABLE');
          expect(full.json().conflicts).toBeUndefined();
          expectNothingInternal(full.body, secrets());
        });

        it('keeps only the hash of a manage token', async () => {
          const token = manageUrl.split('/').pop()!;
          const rows = await t.database.db.selectFrom('public_bookings').selectAll().execute();
          expect(rows.length).toBe(3);
          expect(JSON.stringify(rows)).not.toContain(token);
          expect(rows.map((row) => row.manage_token_hash)).toContain(
            createHash('sha256').update(token).digest('hex'),
          );
        });

        it('refuses a busy time, and any time before now or beyond the page window', async () => {
          const cases = [
            '2026-05-20T09:10:00Z',
            '2026-05-18T05:00:00Z',
            '2026-07-17T05:31:00Z',
            '2026-08-01T09:00:00Z',
          ];
          for (const start_time of cases) {
            const res = await pub('POST', '/public/acme/intro/bookings', {
              body: { start_time, duration_minutes: 30, attendee: attendee(9), answers: { reason: 'x' } },
            });
            expect(res.statusCode, `${start_time}: ${res.body}`).toBe(409);
          }
        });

        it('the attendee sees their booking, moves it and cancels it; then the link is dead', async () => {
          const token = manageUrl.split('/').pop()!;
          const view = await pub('GET', `/public/manage/${token}`);
          expect(view.statusCode, view.body).toBe(200);
          expect(view.json()).toMatchObject({
            status: 'confirmed',
            start_time: '2026-05-20T09:00:00Z',
            duration_minutes: 30,
            time_zone: 'Europe/Paris',
            title: 'Intro call',
            location: { kind: 'video', value: 'https://meet.example.com/acme-intro' },
            attendee: { name: 'Guest 1', email: 'guest1@example.com' },
            booking_page: { slug: 'intro', organization: { slug: 'acme' } },
          });
          expectNothingInternal(view.body, secrets());
          const moved = await pub('POST', `/public/manage/${token}/reschedule`, {
            body: { start_time: '2026-05-20T09:30:00Z' },
          });
          expect(moved.statusCode, moved.body).toBe(200);
          expect(moved.json()).toMatchObject({
            start_time: '2026-05-20T09:30:00Z',
            end_time: '2026-05-20T10:00:00Z',
          });
          const beyond = await pub('POST', `/public/manage/${token}/reschedule`, {
            body: { start_time: '2026-07-20T09:00:00Z' },
          });
          expect(beyond.statusCode).toBe(409);
          const cancelled = await pub('POST', `/public/manage/${token}/cancel`, {
            body: { reason: 'Found a better time' },
          });
          expect(cancelled.statusCode, cancelled.body).toBe(200);
          expect(cancelled.json().status).toBe('cancelled');
          expect((await pub('GET', `/public/manage/${token}`)).statusCode).toBe(404);
          expect(
            (
              await pub('POST', `/public/manage/${token}/reschedule`, {
                body: { start_time: '2026-05-20T11:00:00Z' },
              })
            ).statusCode,
          ).toBe(404);
          expect((await pub('GET', `/public/manage/${'A'.repeat(43)}`)).statusCode).toBe(404);
          expect((await pub('GET', '/public/manage/short')).statusCode).toBe(404);
        });

        it('a public hold keeps a slot from others; its booking consumes it; an expired one is refused', async () => {
          const collective = await t.request('POST', '/booking-pages', {
            body: {
              slug: 'panel',
              title: 'Panel interview',
              durations_minutes: [60],
              resource_ids: team.slice(0, 2),
              hold_minutes: 2,
            },
          });
          expect(collective.statusCode, collective.body).toBe(201);
          const start_time = '2026-05-21T10:00:00Z';
          const held = await pub('POST', '/public/acme/panel/holds', {
            body: { start_time, duration_minutes: 60 },
          });
          expect(held.statusCode, held.body).toBe(201);
          expect(Object.keys(held.json()).sort()).toEqual(['expires_at', 'hold_id']);
          expect(Date.parse(held.json().expires_at) - t.clock.now).toBe(2 * MINUTE);
          const slots = await pub('GET', '/public/acme/panel/slots', {
            query: { start: '2026-05-21T09:00:00Z', end: '2026-05-21T12:00:00Z' },
          });
          const offered = slots.json().slots as Json[];
          expect(offered.length).toBeGreaterThan(0);
          // No offered slot overlaps the held hour.
          for (const slot of offered) {
            const overlaps =
              Date.parse(slot.start_time as string) < Date.parse('2026-05-21T11:00:00Z') &&
              Date.parse(slot.end_time as string) > Date.parse(start_time);
            expect(overlaps, JSON.stringify(slot)).toBe(false);
          }
          const other = await pub('POST', '/public/acme/panel/bookings', {
            body: { start_time, duration_minutes: 60, attendee: attendee(20) },
          });
          expect(other.statusCode).toBe(409);
          const booked = await pub('POST', '/public/acme/panel/bookings', {
            body: { start_time, duration_minutes: 60, attendee: attendee(21), hold_id: held.json().hold_id },
          });
          expect(booked.statusCode, booked.body).toBe(201);

          const late = await pub('POST', '/public/acme/panel/holds', {
            body: { start_time: '2026-05-21T13:00:00Z', duration_minutes: 60 },
          });
          expect(late.statusCode).toBe(201);
          t.clock.advance(2 * MINUTE);
          const expired = await pub('POST', '/public/acme/panel/bookings', {
            body: {
              start_time: '2026-05-21T13:00:00Z',
              duration_minutes: 60,
              attendee: attendee(22),
              hold_id: late.json().hold_id,
            },
          });
          expect(expired.statusCode).toBe(409);
          expect(expired.json().code).toBe('HOLD_EXPIRED');
          const free = await pub('POST', '/public/acme/panel/bookings', {
            body: { start_time: '2026-05-21T13:00:00Z', duration_minutes: 60, attendee: attendee(23) },
          });
          expect(free.statusCode, free.body).toBe(201);
        });

        it('a page that requires confirmation books pending', async () => {
          const res = await t.request('PATCH', `/booking-pages/${pageId}`, {
            body: { requires_confirmation: true },
          });
          expect(res.statusCode).toBe(200);
          const booked = await pub('POST', '/public/acme/intro/bookings', {
            body: {
              start_time: '2026-05-22T09:00:00Z',
              duration_minutes: 60,
              attendee: attendee(30),
              answers: { reason: 'x' },
            },
          });
          expect(booked.statusCode, booked.body).toBe(201);
          expect(booked.json().status).toBe('pending');
        });

        it('replays a public booking by Idempotency-Key, and refuses the key with another body', async () => {
          const body = {
            start_time: '2026-05-22T11:00:00Z',
            duration_minutes: 30,
            attendee: attendee(40),
            answers: { reason: 'x' },
          };
          const headers = { 'idempotency-key': 'attendee-40-try' };
          const first = await pub('POST', '/public/acme/intro/bookings', { body, headers });
          expect(first.statusCode, first.body).toBe(201);
          const again = await pub('POST', '/public/acme/intro/bookings', { body, headers });
          expect(again.statusCode).toBe(201);
          expect(again.headers['idempotent-replayed']).toBe('true');
          expect(again.json()).toEqual(first.json());
          const reused = await pub('POST', '/public/acme/intro/bookings', {
            body: { ...body, start_time: '2026-05-22T12:00:00Z' },
            headers,
          });
          expect(reused.statusCode).toBe(422);
          const stored = await t.database.db
            .selectFrom('bookings')
            .select('booking_id')
            .where('start_time', '=', new Date('2026-05-22T11:00:00Z'))
            .execute();
          expect(stored.length).toBe(1);
          // The stored answer holds the manage token: it is sealed like every stored answer.
          const rows = await t.database.db.selectFrom('idempotency_keys').selectAll().execute();
          const token = first.json().manage_url.split('/').pop();
          expect(JSON.stringify(rows)).not.toContain(token);
        });

        it('an unpublished or deleted page is a 404; its bookings keep their links', async () => {
          await t.request('PATCH', `/booking-pages/${pageId}`, { body: { published: false } });
          expect((await pub('GET', '/public/acme/intro')).statusCode).toBe(404);
          expect(
            (
              await pub('GET', '/public/acme/intro/slots', {
                query: { start: NOW, end: '2026-05-19T00:00:00Z' },
              })
            ).statusCode,
          ).toBe(404);
          const booked = await pub('POST', '/public/acme/panel/bookings', {
            body: { start_time: '2026-05-25T10:00:00Z', duration_minutes: 60, attendee: attendee(50) },
          });
          expect(booked.statusCode).toBe(201);
          const panel = (await t.request('GET', '/booking-pages'))
            .json()
            .booking_pages.find((p: Json) => p.slug === 'panel');
          expect((await t.request('DELETE', `/booking-pages/${panel.booking_page_id}`)).statusCode).toBe(204);
          expect((await pub('GET', '/public/acme/panel')).statusCode).toBe(404);
          const token = booked.json().manage_url.split('/').pop();
          const view = await pub('GET', `/public/manage/${token}`);
          expect(view.statusCode).toBe(200);
          expect(view.json().booking_page).toBeNull();
        });

        it('a deleted member leaves a round-robin page; a page booking all of them offers nothing', async () => {
          const [a, b] = [
            await createOpenResource(t, { name: 'Temp A', kind: 'person', time_zone: 'UTC' }),
            await createOpenResource(t, { name: 'Temp B', kind: 'person', time_zone: 'UTC' }),
          ];
          for (const [slug, assign] of [
            ['pair-any', 'one'],
            ['pair-all', 'all'],
          ]) {
            const res = await t.request('POST', '/booking-pages', {
              body: { slug, title: slug, durations_minutes: [30], resource_ids: [a, b], assign },
            });
            expect(res.statusCode, res.body).toBe(201);
          }
          expect((await t.request('DELETE', `/resources/${a}`)).statusCode).toBe(204);
          const window = { start: '2026-05-26T09:00:00Z', end: '2026-05-26T10:00:00Z' };
          const any = await pub('GET', '/public/acme/pair-any/slots', { query: window });
          expect(any.json().slots.length).toBe(2);
          const all = await pub('GET', '/public/acme/pair-all/slots', { query: window });
          expect(all.json().slots).toEqual([]);
          const booking = {
            start_time: '2026-05-26T09:00:00Z',
            duration_minutes: 30,
            attendee: attendee(60),
          };
          const onAny = await pub('POST', '/public/acme/pair-any/bookings', { body: booking });
          expect(onAny.statusCode, onAny.body).toBe(201);
          const stored = (await t.request('GET', `/bookings/${onAny.json().booking_id}`)).json();
          expect(stored.resource_ids).toEqual([b]);
          const onAll = await pub('POST', '/public/acme/pair-all/bookings', {
            body: { ...booking, start_time: '2026-05-26T09:30:00Z' },
          });
          expect(onAll.statusCode, onAll.body).toBe(409);
          expectNothingInternal(onAll.body, [a, b]);
        });

        it('a new organization slug moves the public URLs at once', async () => {
          await t.request('PATCH', `/booking-pages/${pageId}`, { body: { published: true } });
          const res = await t.request('PATCH', '/organization', { body: { slug: 'acme-health' } });
          expect(res.statusCode).toBe(200);
          expect((await pub('GET', '/public/acme-health/intro')).statusCode).toBe(200);
          expect((await pub('GET', '/public/acme/intro')).statusCode).toBe(404);
          expect((await t.request('GET', `/booking-pages/${pageId}`)).json().url).toMatch(
            /\/book\/acme-health\/intro$/,
          );
          await t.request('PATCH', '/organization', { body: { slug: 'acme' } });
        });
      });
    },
  );

  describe.skipIf(backend.skipReason)(`public rate limit on ${backend.name}${suffix}`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp(backend, NOW, { env: { SCHED_PUBLIC_RATE_LIMIT: '5', SCHED_TRUST_PROXY: '1' } });
      const r = await createOpenResource(t, { name: 'Solo', kind: 'person', time_zone: 'UTC' });
      const res = await t.request('POST', '/booking-pages', {
        body: { slug: 'solo', title: 'Solo', durations_minutes: [30], resource_ids: [r] },
      });
      expect(res.statusCode).toBe(201);
    }, 60_000);
    afterAll(async () => t?.close());

    const from = (address: string, forwarded?: string) =>
      t.app.inject({
        method: 'GET',
        url: '/public/acme/solo',
        remoteAddress: address,
        ...(forwarded ? { headers: { 'x-forwarded-for': forwarded } } : {}),
      });

    it('answers the sixth request a minute from one address with 429 and Retry-After; others go on', async () => {
      for (let n = 0; n < 5; n++) expect((await from('192.0.2.10')).statusCode).toBe(200);
      const limited = await from('192.0.2.10');
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(limited.headers['content-type']).toContain('application/problem+json');
      expect(limited.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
      expect((await from('192.0.2.11')).statusCode).toBe(200);
      // The API itself is not limited by the public budget.
      expect((await t.request('GET', '/organization')).statusCode).toBe(200);
    });

    it('believes X-Forwarded-For from the one trusted hop', async () => {
      for (let n = 0; n < 5; n++) expect((await from('10.0.0.1', '198.51.100.7')).statusCode).toBe(200);
      expect((await from('10.0.0.1', '198.51.100.7')).statusCode).toBe(429);
      expect((await from('10.0.0.1', '198.51.100.8')).statusCode).toBe(200);
    });
  });
}

import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KnownEvents, RemoteChanges } from '../../src/calendar/port/provider.js';
import { GuardedHttp } from '../../src/integrations/http/guarded-http.js';
import { OutboundGuard } from '../../src/integrations/http/outbound-guard.js';
import {
  OutlookCalendarProvider,
  type OutlookProviderOptions,
} from '../../src/calendar/providers/outlook/outlook-provider.js';
import { NOTIFICATION_PARSERS } from '../../src/calendar/port/notifications.js';
import { ProviderError } from '../../src/integrations/errors.js';
import { type GraphEmulator, startGraphEmulator } from '../emulators/graph/graph-emulator.js';
import { graphCaller, utc } from '../emulators/graph/graph-test-client.js';
import { HooksReceiver } from '../emulators/graph/hooks-receiver.js';
import { putIcs } from '../emulators/graph/ics-to-graph.js';
import { EmulatorTokenSource } from '../emulators/graph/token-source.js';
import { bookingEvent, describeProviderContract, externalSeries, readBack } from './provider-contract.js';

const DAY = 86_400_000;
/** The contract's events sit in March 2026; the window must reach them whatever today is. */
const WIDE = { pastDays: Math.ceil((Date.now() - Date.UTC(2025, 0, 1)) / DAY), futureDays: 800 };

let emulator: GraphEmulator;
const http = new GuardedHttp(new OutboundGuard({ allow: ['127.0.0.1/32'] }));
const none: KnownEvents = new Map();

/** Where the contract's watches deliver. */
let receiver: HooksReceiver;

beforeAll(async () => {
  emulator = await startGraphEmulator();
  receiver = await new HooksReceiver().start();
});
afterAll(async () => {
  await receiver?.stop();
  await emulator?.stop();
  await http.close();
});

/**
 * A provider on the primary calendar of an emptied mailbox (the only calendar Graph v1.0 documents
 * delta for), or on the calendar named in `options`.
 */
function setup(options: Partial<OutlookProviderOptions> = {}) {
  if (options.calendarId === undefined) emulator.control.reset();
  const calendarId = options.calendarId ?? 'primary';
  const tokens = new EmulatorTokenSource(emulator);
  const provider = new OutlookCalendarProvider({
    http,
    apiUrl: emulator.apiUrl,
    tokens,
    window: WIDE,
    ...options,
    calendarId,
  });
  return { calendarId, tokens, provider };
}

const asUser = graphCaller(() => emulator);

async function codeOf(promise: Promise<unknown>): Promise<ProviderError> {
  const error: unknown = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof ProviderError)) throw new Error(`expected a ProviderError, got ${String(error)}`);
  return error;
}

const starts = (changes: RemoteChanges) =>
  changes.changed.map((e) => new Date(readBack(e.ics).occurrences[0]!.startsAt).toISOString()).sort();

const otherCalendar = () => emulator.control.createCalendar(`c-${randomUUID().slice(0, 8)}`).id;

for (const variant of ['primary calendar, delta', 'another calendar, calendarView'] as const) {
  describeProviderContract(
    `Outlook (Graph emulator, ${variant})`,
    async () => {
      const primary = variant.startsWith('primary');
      const { calendarId, provider } = setup(primary ? {} : { calendarId: otherCalendar() });
      expect(provider.capabilities.incremental).toBe(primary);
      return {
        provider,
        external: {
          async put(ics: string) {
            putIcs(emulator.control, calendarId, ics);
          },
          async remove(remoteId: string) {
            const { status } = await asUser('DELETE', `me/events/${encodeURIComponent(remoteId)}`);
            if (status !== 204) throw new Error(`external DELETE answered ${status}`);
          },
        },
        close: async () => {
          if (!primary) await asUser('DELETE', `me/calendars/${encodeURIComponent(calendarId)}`);
        },
        push: {
          callbackUrl: `${receiver.origin}/hooks/outlook`,
          lifecycleUrl: `${receiver.origin}/hooks/outlook/lifecycle`,
          parse: NOTIFICATION_PARSERS.outlook,
          delivered: () =>
            receiver.received
              .filter((hook) => hook.path === '/hooks/outlook')
              .map((hook) => ({ headers: {}, body: hook.body })),
          idle: () => emulator.control.notificationsIdle(),
        },
      };
    },
    { seriesAsInstances: true },
  );
}

describe('Outlook provider on the Graph emulator', () => {
  afterEach(() => {
    emulator.control.clearFaults();
    emulator.control.configureDelta({ emptyFirstPage: false, replay: 0 });
  });

  it('pages delta with a small maxpagesize, sends Prefer on every call, and ignores replays', async () => {
    const { provider } = setup({ pageSize: 2 });
    const written = [];
    for (let i = 0; i < 7; i++)
      written.push(
        await provider.createEvent(
          bookingEvent({ startsAt: Date.now() + i * DAY, endsAt: Date.now() + i * DAY + 3_600_000 }),
        ),
      );
    emulator.control.configureDelta({ emptyFirstPage: true, replay: 3 });
    const before = emulator.control.requests().length;
    const listing = await provider.listChanges(null, none);
    const calls = emulator.control.requests().slice(before);
    expect(listing.changed.map((e) => e.remoteId).sort()).toEqual(written.map((w) => w.remoteId).sort());
    expect(calls.length).toBe(5);
    for (const call of calls) {
      expect(call.path).toMatch(/calendarView\/delta$/);
      expect(call.prefer).toContain('IdType="ImmutableId"');
      expect(call.prefer).toContain('outlook.timezone="UTC"');
      expect(call.prefer).toContain('odata.maxpagesize=2');
    }
    const known = new Map(listing.changed.map((e) => [e.remoteId, e.etag]));
    const again = await provider.listChanges(listing.cursor, known);
    expect(again).toMatchObject({ changed: [], removed: [], full: false });
  });

  it('reports events deleted, cancelled by their organizer, or moved out of the window as removed', async () => {
    const { provider, calendarId } = setup({ window: { pastDays: 30, futureDays: 60 } });
    const soon = Date.now() + 10 * DAY;
    const deleted = await provider.createEvent(bookingEvent({ startsAt: soon, endsAt: soon + 3_600_000 }));
    const moved = await provider.createEvent(
      bookingEvent({ startsAt: soon + DAY, endsAt: soon + DAY + 3_600_000 }),
    );
    const { immutableId: cancelled } = emulator.control.putEvent(calendarId, {
      subject: 'Team meeting',
      start: utc(soon + 2 * DAY),
      end: utc(soon + 2 * DAY + 3_600_000),
    });
    const far = Date.now() + 300 * DAY;
    const { immutableId: outside } = emulator.control.putEvent(calendarId, {
      subject: 'Far',
      start: utc(far),
      end: utc(far + 3_600_000),
    });
    const listing = await provider.listChanges(null, none);
    expect(listing.changed).toHaveLength(3);
    const known = new Map(listing.changed.map((e) => [e.remoteId, e.etag]));

    expect((await asUser('DELETE', `me/events/${encodeURIComponent(deleted.remoteId)}`)).status).toBe(204);
    const patch = await asUser('PATCH', `me/events/${encodeURIComponent(moved.remoteId)}`, {
      start: utc(far),
      end: utc(far + 3_600_000),
    });
    expect(patch.status).toBe(200);
    emulator.control.cancelEvent(cancelled);
    await asUser('PATCH', `me/events/${encodeURIComponent(outside)}`, { subject: 'Far, renamed' });

    const changes = await provider.listChanges(listing.cursor, known);
    expect(changes.full).toBe(false);
    expect(changes.changed).toEqual([]);
    expect(changes.removed).toEqual(expect.arrayContaining([deleted.remoteId, moved.remoteId, cancelled]));
  });

  it('an expired delta token (410 SyncStateNotFound) restarts with a full round that finds a deletion', async () => {
    const { provider } = setup();
    const kept = await provider.createEvent(bookingEvent());
    const dropped = await provider.createEvent(bookingEvent());
    const listing = await provider.listChanges(null, none);
    const known = new Map(listing.changed.map((e) => [e.remoteId, e.etag]));
    await asUser('DELETE', `me/events/${encodeURIComponent(dropped.remoteId)}`);
    emulator.control.expireDeltaTokens();
    const changes = await provider.listChanges(listing.cursor, known);
    expect(changes).toMatchObject({ full: true, changed: [], removed: [dropped.remoteId] });
    expect(known.has(kept.remoteId)).toBe(true);
    const after = await provider.listChanges(
      changes.cursor,
      new Map([[kept.remoteId, known.get(kept.remoteId)!]]),
    );
    expect(after).toMatchObject({ full: false, changed: [], removed: [] });
  });

  it('a 410 on the second page of a first round restarts it from the Location: each event once', async () => {
    const { provider } = setup({ pageSize: 2 });
    const written = [];
    for (let i = 0; i < 5; i++) {
      const start = Date.now() + (i + 1) * DAY;
      written.push(await provider.createEvent(bookingEvent({ startsAt: start, endsAt: start + 3_600_000 })));
    }
    emulator.control.addFault({ kind: 410, delta: 'skiptoken', nth: 1 });
    const before = emulator.control.requests().length;
    const listing = await provider.listChanges(null, none);
    expect(listing.full).toBe(true);
    expect(listing.changed.map((e) => e.remoteId).sort()).toEqual(written.map((w) => w.remoteId).sort());
    const calls = emulator.control.requests().slice(before);
    expect(calls.map((c) => c.status)).toEqual([200, 410, 200, 200, 200]);
    expect(new URLSearchParams(calls[2]!.query).get('$deltatoken')).toBe('');
    const again = await provider.listChanges(
      listing.cursor,
      new Map(listing.changed.map((e) => [e.remoteId, e.etag])),
    );
    expect(again).toMatchObject({ full: false, changed: [], removed: [] });
  });

  it('a round that keeps losing its sync state gives up with BAD_RESPONSE', async () => {
    const { provider } = setup();
    emulator.control.addFault({ kind: 410, delta: 'start', count: 50 });
    expect((await codeOf(provider.listChanges(null, none))).code).toBe('BAD_RESPONSE');
    expect(emulator.control.faultsInjected).toBe(4);
  });

  it('an incremental round that loses its sync state midway becomes a full listing of the same window', async () => {
    const { provider } = setup({ pageSize: 1 });
    const kept = await provider.createEvent(bookingEvent());
    const dropped = await provider.createEvent(
      bookingEvent({ startsAt: Date.UTC(2026, 2, 3, 9), endsAt: Date.UTC(2026, 2, 3, 10) }),
    );
    const listing = await provider.listChanges(null, none);
    const known = new Map(listing.changed.map((e) => [e.remoteId, e.etag]));
    await asUser('DELETE', `me/events/${encodeURIComponent(dropped.remoteId)}`);
    emulator.control.configureDelta({ replay: 2 });
    emulator.control.addFault({ kind: 410, delta: 'skiptoken', nth: 1 });
    const changes = await provider.listChanges(listing.cursor, known);
    expect(changes).toMatchObject({ full: true, changed: [], removed: [dropped.remoteId] });
    expect(JSON.parse(changes.cursor!)).toMatchObject({
      s: JSON.parse(listing.cursor!).s,
      e: JSON.parse(listing.cursor!).e,
    });
    expect(known.has(kept.remoteId)).toBe(true);
  });

  it('another calendar is listed through calendarView, never delta, and watched through me/events', async () => {
    const { provider, calendarId } = setup({
      calendarId: emulator.control.createCalendar('Other').id,
      pageSize: 2,
    });
    expect(provider.capabilities.incremental).toBe(false);
    const written = [];
    for (let i = 0; i < 3; i++) {
      const start = Date.now() + (i + 1) * DAY;
      written.push(await provider.createEvent(bookingEvent({ startsAt: start, endsAt: start + 3_600_000 })));
    }
    emulator.control.putEvent('primary', {
      subject: 'Not ours',
      start: utc(Date.now() + DAY),
      end: utc(Date.now() + DAY + 3_600_000),
    });
    const before = emulator.control.requests().length;
    const listing = await provider.listChanges(null, none);
    expect(listing).toMatchObject({ full: true, cursor: null, removed: [] });
    expect(listing.changed.map((e) => e.remoteId).sort()).toEqual(written.map((w) => w.remoteId).sort());
    const calls = emulator.control.requests().slice(before);
    expect(calls.map((c) => c.path)).toEqual(Array(2).fill(`/v1.0/me/calendars/${calendarId}/calendarView`));
    expect(calls.every((c) => c.status === 200)).toBe(true);
  });

  it('starts a new window (a full round) once the stored one reaches too little into the future', async () => {
    let now = Date.now();
    const { provider } = setup({ now: () => now, window: { pastDays: 31, futureDays: 400 } });
    const first = await provider.listChanges(null, none);
    now += 50 * DAY;
    expect((await provider.listChanges(first.cursor, none)).full).toBe(false);
    now += 60 * DAY;
    const moved = await provider.listChanges(first.cursor, none);
    expect(moved.full).toBe(true);
    expect(JSON.parse(moved.cursor!).e).toBe(now + 400 * DAY);
  });

  it('a weekly series put in Outlook gives one object per instance: exception moved, EXDATE gone', async () => {
    const { provider, calendarId } = setup();
    const uid = `${randomUUID()}@elsewhere`;
    putIcs(emulator.control, calendarId, externalSeries(uid));
    const listing = await provider.listChanges(null, none);
    expect(starts(listing)).toEqual([
      '2026-03-16T08:00:00.000Z',
      '2026-03-30T09:00:00.000Z',
      '2026-04-06T07:00:00.000Z',
      '2026-04-13T07:00:00.000Z',
    ]);
    const uids = new Set(listing.changed.map((e) => readBack(e.ics).summary.uid));
    expect(uids.size).toBe(4);
    for (const event of listing.changed) expect(readBack(event.ics).summary.recurring).toBe(false);
    const moved = listing.changed.find((e) => readBack(e.ics).summary.title === 'Weekly (moved)');
    expect(moved).toBeDefined();
  });

  it('a series made through Graph: an occurrence PATCHed becomes an exception, one DELETEd goes', async () => {
    const { provider, calendarId } = setup();
    const series = await asUser('POST', `me/calendars/${encodeURIComponent(calendarId)}/events`, {
      subject: 'Standup',
      start: { dateTime: '2027-03-15T09:00:00', timeZone: 'W. Europe Standard Time' },
      end: { dateTime: '2027-03-15T09:15:00', timeZone: 'W. Europe Standard Time' },
      recurrence: {
        pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'], firstDayOfWeek: 'monday' },
        range: { type: 'endDate', startDate: '2027-03-15', endDate: '2027-04-05' },
      },
    });
    expect(series.status).toBe(201);
    const listing = await provider.listChanges(null, none);
    // Berlin leaves winter time on 28 March 2027.
    expect(starts(listing)).toEqual([
      '2027-03-15T08:00:00.000Z',
      '2027-03-22T08:00:00.000Z',
      '2027-03-29T07:00:00.000Z',
      '2027-04-05T07:00:00.000Z',
    ]);
    const byStart = new Map(
      listing.changed.map((e) => [new Date(readBack(e.ics).occurrences[0]!.startsAt).toISOString(), e]),
    );
    const second = byStart.get('2027-03-22T08:00:00.000Z')!;
    const third = byStart.get('2027-03-29T07:00:00.000Z')!;
    const patched = await asUser('PATCH', `me/events/${encodeURIComponent(second.remoteId)}`, {
      subject: 'Standup (late)',
      start: utc(Date.UTC(2027, 2, 22, 10)),
      end: utc(Date.UTC(2027, 2, 22, 10, 15)),
    });
    expect(patched.json.type).toBe('exception');
    expect((await asUser('DELETE', `me/events/${encodeURIComponent(third.remoteId)}`)).status).toBe(204);
    const known = new Map(listing.changed.map((e) => [e.remoteId, e.etag]));
    const changes = await provider.listChanges(listing.cursor, known);
    expect(changes.full).toBe(false);
    expect(changes.removed).toEqual([third.remoteId]);
    expect(changes.changed.map((e) => e.remoteId)).toEqual([second.remoteId]);
    const exception = readBack(changes.changed[0]!.ics);
    expect(exception.summary.title).toBe('Standup (late)');
    expect(exception.occurrences[0]!.startsAt).toBe(Date.UTC(2027, 2, 22, 10));
  });

  it('an all-day event keeps its date, whatever its zone', async () => {
    const { provider, calendarId } = setup();
    for (const timeZone of ['Tokyo Standard Time', 'Pacific/Kiritimati', 'Hawaiian Standard Time']) {
      const made = await asUser('POST', `me/calendars/${encodeURIComponent(calendarId)}/events`, {
        subject: `Holiday ${timeZone}`,
        isAllDay: true,
        start: { dateTime: '2026-12-24T00:00:00', timeZone },
        end: { dateTime: '2026-12-26T00:00:00', timeZone },
      });
      expect(made.status).toBe(201);
      const read = await provider.getEvent(made.json.id);
      expect(read!.ics).toContain('DTSTART;VALUE=DATE:20261224');
      expect(read!.ics).toContain('DTEND;VALUE=DATE:20261226');
      const { occurrences } = readBack(read!.ics);
      expect(occurrences[0]).toMatchObject({
        allDay: true,
        startsAt: Date.UTC(2026, 11, 24),
        endsAt: Date.UTC(2026, 11, 26),
      });
    }
  });

  it('free time is transparent, the booking id comes back in the delta too', async () => {
    const { provider, calendarId } = setup();
    emulator.control.putEvent(calendarId, {
      subject: 'Lunch',
      showAs: 'free',
      start: utc(Date.now() + DAY),
      end: utc(Date.now() + DAY + 3_600_000),
    });
    const event = bookingEvent();
    await provider.createEvent(event);
    const listing = await provider.listChanges(null, none);
    const lunch = listing.changed.find((e) => readBack(e.ics).summary.title === 'Lunch')!;
    expect(readBack(lunch.ics).occurrences[0]!.transparency).toBe('transparent');
    const own = listing.changed.find((e) => readBack(e.ics).summary.bookingId === event.bookingId);
    expect(readBack(own!.ics).summary.uid).toBe(event.uid);
  });

  it('transactionId makes a retried create return the same event', async () => {
    const { provider, calendarId } = setup();
    const event = bookingEvent();
    const first = await provider.createEvent(event);
    const retried = await provider.createEvent({ ...event, title: 'second attempt' });
    expect(retried.remoteId).toBe(first.remoteId);
    expect(emulator.control.state.mailbox.items(calendarId)).toHaveLength(1);
    const sent = emulator.control.requests().filter((r) => r.method === 'POST' && r.path.endsWith('/events'));
    expect(sent.length).toBeGreaterThanOrEqual(2);
  });

  it('waits out a short fractional Retry-After, then gives up with RATE_LIMITED / UNAVAILABLE', async () => {
    const { provider } = setup();
    const created = await provider.createEvent(bookingEvent());
    emulator.control.addFault({ kind: 429, count: 2, retryAfter: '0.25', method: 'GET' });
    const started = Date.now();
    expect(await provider.getEvent(created.remoteId)).not.toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    emulator.control.clearFaults();

    emulator.control.addFault({ kind: 429, count: 50, retryAfter: '2.5' });
    const limited = await codeOf(provider.getEvent(created.remoteId));
    expect(limited).toMatchObject({ code: 'RATE_LIMITED', details: { status: 429, retryAfterMs: 2500 } });
    emulator.control.clearFaults();

    for (const [kind, code] of [
      [429, 'RATE_LIMITED'],
      [503, 'UNAVAILABLE'],
      [504, 'UNAVAILABLE'],
    ] as const) {
      emulator.control.addFault({ kind, count: 50 });
      const before = emulator.control.faultsInjected;
      const error = await codeOf(provider.listChanges(null, none));
      expect(error.code).toBe(code);
      expect(error.details.retryAfterMs).toBeUndefined();
      expect(emulator.control.faultsInjected - before).toBeGreaterThan(1);
      emulator.control.clearFaults();
    }
  });

  it('a call left hanging is a TIMEOUT', async () => {
    const { provider } = setup({ timeoutMs: 300 });
    emulator.control.addFault({ kind: 'hang', count: 1 });
    expect((await codeOf(provider.listChanges(null, none))).code).toBe('TIMEOUT');
  });

  it('an expired access token is refreshed once; a refused refresh or a second 401 is AUTH_FAILED', async () => {
    const { provider, tokens } = setup();
    const created = await provider.createEvent(bookingEvent());
    emulator.control.expireAccessTokens();
    expect(await provider.getEvent(created.remoteId)).not.toBeNull();
    expect(tokens.forcedRefreshes).toBe(1);

    emulator.control.expireAccessTokens();
    emulator.control.revokeRefreshTokens();
    expect((await codeOf(provider.getEvent(created.remoteId))).code).toBe('AUTH_FAILED');

    const stuck = new OutlookCalendarProvider({
      http,
      apiUrl: emulator.apiUrl,
      calendarId: 'primary',
      tokens: { get: async () => 'not-a-token' },
    });
    expect((await codeOf(stuck.listChanges(null, none))).code).toBe('AUTH_FAILED');
  });

  describe('subscriptions', () => {
    let hooks: HooksReceiver;
    beforeAll(async () => {
      hooks = await new HooksReceiver().start();
    });
    afterAll(async () => {
      await hooks?.stop();
    });
    const request = (secret = randomUUID()) => ({
      callbackUrl: `${hooks.origin}/hooks/outlook`,
      lifecycleUrl: `${hooks.origin}/hooks/outlook/lifecycle`,
      secret,
      ttlSeconds: 7 * 86_400,
    });

    it('create validates both URLs, then change notifications arrive with the clientState', async () => {
      hooks.echo = 'decoded';
      const { provider } = setup();
      const watch = request();
      const validations = hooks.validations.length;
      const channel = await provider.startWatch(watch);
      expect(hooks.validations.slice(validations)).toEqual(['/hooks/outlook', '/hooks/outlook/lifecycle']);
      expect(emulator.control.subscriptions().find((sub) => sub.id === channel.id)?.resource).toBe(
        'me/events',
      );
      expect(channel.resourceId).toBeNull();
      expect(channel.expiresAt).toBeLessThanOrEqual(Date.now() + 4230 * 60_000);
      expect(channel.expiresAt).toBeGreaterThan(Date.now() + 4000 * 60_000);

      const created = await provider.createEvent(bookingEvent());
      const about = (body: unknown) =>
        (body as { value: { subscriptionId: string; changeType: string; resourceData: { id: string } }[] })
          .value;
      const hook = await hooks.waitFor('/hooks/outlook', (body) =>
        about(body).some((n) => n.subscriptionId === channel.id && n.resourceData.id === created.remoteId),
      );
      expect(about(hook.body).find((n) => n.subscriptionId === channel.id)?.changeType).toBe('created');
      expect(
        NOTIFICATION_PARSERS.outlook({ headers: {}, body: hook.body }).filter(
          (n) => n.channelId === channel.id,
        ),
      ).toEqual([{ channelId: channel.id, token: watch.secret, resourceId: null, state: 'changed' }]);
      await provider.stopWatch(channel);
      await provider.stopWatch(channel);
      expect(emulator.control.subscriptions().map((s) => s.id)).not.toContain(channel.id);
    });

    it('renews by PATCH, and recreates a subscription Graph has dropped (404)', async () => {
      hooks.echo = 'decoded';
      const { provider } = setup();
      const watch = request();
      const channel = await provider.startWatch({ ...watch, ttlSeconds: 3600 });
      const renewed = await provider.renewWatch(channel, watch);
      expect(renewed.id).toBe(channel.id);
      expect(renewed.expiresAt).toBeGreaterThan(channel.expiresAt);
      emulator.control.removeSubscription(channel.id);
      const recreated = await provider.renewWatch(renewed, watch);
      expect(recreated.id).not.toBe(channel.id);
      expect(emulator.control.subscriptions().map((s) => s.id)).toContain(recreated.id);
      await provider.stopWatch(recreated);
    });

    it('lifecycle notifications arrive at the lifecycle URL', async () => {
      hooks.echo = 'decoded';
      const { provider } = setup();
      const watch = request();
      const channel = await provider.startWatch(watch);
      await emulator.control.sendLifecycle(channel.id, 'reauthorizationRequired');
      const lifecycle = (body: unknown) => NOTIFICATION_PARSERS.outlookLifecycle({ headers: {}, body });
      /** What production reads from the lifecycle POST the emulator sent for this channel and event. */
      const delivered = async (event: 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed') => {
        await emulator.control.sendLifecycle(channel.id, event);
        const sent = (body: unknown) =>
          (body as { value: { subscriptionId: string; lifecycleEvent: string }[] }).value.some(
            (n) => n.subscriptionId === channel.id && n.lifecycleEvent === event,
          );
        const hook = await hooks.waitFor('/hooks/outlook/lifecycle', sent);
        // A lifecycle notification is no change notification.
        expect(NOTIFICATION_PARSERS.outlook({ headers: {}, body: hook.body })).toEqual([]);
        return lifecycle(hook.body);
      };
      const held = { channelId: channel.id, token: watch.secret, resourceId: null };
      expect(await delivered('reauthorizationRequired')).toEqual([{ ...held, state: 'renew' }]);
      expect(await delivered('missed')).toEqual([{ ...held, state: 'changed' }]);
      expect(await delivered('subscriptionRemoved')).toEqual([{ ...held, state: 'renew' }]);
      for (const junk of ['not json', { value: [{}] }, { value: 'x' }, null]) {
        expect(NOTIFICATION_PARSERS.outlook({ headers: {}, body: junk })).toEqual([]);
        expect(lifecycle(junk)).toEqual([]);
      }
      const again = await provider.renewWatch(channel, watch);
      expect(again.id).not.toBe(channel.id);
      await provider.stopWatch(again);
    });

    it('a receiver that does not echo the decoded token makes the create fail (REJECTED)', async () => {
      const { provider } = setup();
      for (const echo of ['encoded', 'none', 'wrong-type'] as const) {
        hooks.echo = echo;
        expect((await codeOf(provider.startWatch(request()))).code).toBe('REJECTED');
      }
      hooks.echo = 'decoded';
    });
  });
});

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GraphEmulator, startGraphEmulator } from './graph-emulator.js';
import { graphCaller, utc } from './graph-test-client.js';
import { HooksReceiver } from './hooks-receiver.js';

let emulator: GraphEmulator;
const call = graphCaller(() => emulator);

beforeAll(async () => {
  emulator = await startGraphEmulator();
});
afterAll(async () => {
  await emulator?.stop();
});
afterEach(() => {
  emulator.control.clearFaults();
});

const event = (extra: Record<string, unknown> = {}) => ({
  subject: 'Plain',
  start: utc('2026-12-01T09:00:00'),
  end: utc('2026-12-01T10:00:00'),
  ...extra,
});

describe('recurrence and calendarView', () => {
  const series = (pattern: Record<string, unknown>, range: Record<string, unknown>) =>
    event({
      subject: 'Series',
      start: utc('2027-01-04T09:00:00'),
      end: utc('2027-01-04T09:30:00'),
      recurrence: { pattern, range: { startDate: '2027-01-04', ...range } },
    });
  const view = async (calendarId: string, from: string, to: string) =>
    (
      await call(
        'GET',
        `me/calendars/${calendarId}/calendarView?startDateTime=${from}&endDateTime=${to}&$top=100`,
      )
    ).json.value as any[];

  it('expands daily, weekly and absoluteMonthly patterns with numbered, endDate and noEnd ranges', async () => {
    const cal = emulator.control.createCalendar('rec').id;
    await call(
      'POST',
      `me/calendars/${cal}/events`,
      series({ type: 'daily', interval: 2 }, { type: 'numbered', numberOfOccurrences: 3 }),
    );
    await call(
      'POST',
      `me/calendars/${cal}/events`,
      series(
        { type: 'weekly', interval: 1, daysOfWeek: ['monday', 'thursday'], firstDayOfWeek: 'sunday' },
        { type: 'endDate', endDate: '2027-01-14' },
      ),
    );
    await call(
      'POST',
      `me/calendars/${cal}/events`,
      series({ type: 'absoluteMonthly', interval: 1, dayOfMonth: 4 }, { type: 'noEnd' }),
    );
    const items = await view(cal, '2027-01-01T00:00:00Z', '2027-03-31T00:00:00Z');
    const days = items.map((i) => i.start.dateTime.slice(0, 10));
    expect(days).toEqual([
      '2027-01-04',
      '2027-01-04',
      '2027-01-04',
      '2027-01-06',
      '2027-01-07',
      '2027-01-08',
      '2027-01-11',
      '2027-01-14',
      '2027-02-04',
      '2027-03-04',
    ]);
    expect(new Set(items.map((i) => i.type))).toEqual(new Set(['occurrence']));
    expect(items.every((i) => i.seriesMasterId && i.originalStart)).toBe(true);
    expect(new Set(items.map((i) => i.iCalUId)).size).toBe(items.length);
    const missing = await call('GET', `me/calendars/${cal}/calendarView`);
    expect(missing.status).toBe(400);
  });

  it('refuses patterns missing what their type requires', async () => {
    const refused = await call(
      'POST',
      'me/events',
      series({ type: 'weekly', interval: 1 }, { type: 'noEnd' }),
    );
    expect(refused.status).toBe(400);
    const badRange = await call(
      'POST',
      'me/events',
      series({ type: 'daily', interval: 1 }, { type: 'numbered' }),
    );
    expect(badRange.status).toBe(400);
  });

  it('a PATCHed occurrence becomes an exception; a DELETEd one is cancelled; instances lists the rest', async () => {
    const cal = emulator.control.createCalendar('exc').id;
    const master = await call(
      'POST',
      `me/calendars/${cal}/events`,
      series(
        { type: 'weekly', interval: 1, daysOfWeek: ['monday'] },
        { type: 'numbered', numberOfOccurrences: 3 },
      ),
    );
    const [first, second] = await view(cal, '2027-01-01T00:00:00Z', '2027-02-01T00:00:00Z');
    const exception = await call(
      'PATCH',
      `me/events/${first.id}`,
      { subject: 'Moved', start: utc('2027-01-05T09:00:00'), end: utc('2027-01-05T10:00:00') },
      { 'if-match': first['@odata.etag'] },
    );
    expect(exception.json).toMatchObject({
      type: 'exception',
      id: first.id,
      subject: 'Moved',
      seriesMasterId: master.json.id,
    });
    expect((await call('DELETE', `me/events/${second.id}`)).status).toBe(204);
    expect((await call('GET', `me/events/${second.id}`)).status).toBe(404);
    const instances = await call(
      'GET',
      `me/events/${master.json.id}/instances?startDateTime=2027-01-01T00:00:00Z&endDateTime=2027-02-01T00:00:00Z`,
    );
    expect(instances.json.value.map((i: any) => [i.type, i.start.dateTime.slice(0, 10)])).toEqual([
      ['exception', '2027-01-05'],
      ['occurrence', '2027-01-18'],
    ]);
  });
});

describe('calendarView/delta', () => {
  const window = 'startDateTime=2026-11-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z';
  // Delta is documented for the primary calendar only: each test starts from an empty mailbox.
  beforeEach(() => {
    emulator.control.reset();
  });

  async function round(
    first: string,
    pageSize = 2,
  ): Promise<{ items: any[]; deltaLink: string; pages: number }> {
    const items: any[] = [];
    let next: string | undefined = first;
    let pages = 0;
    for (;;) {
      const page = await call('GET', next, undefined, {
        prefer: `IdType="ImmutableId", odata.maxpagesize=${pageSize}`,
      });
      expect(page.status).toBe(200);
      pages++;
      items.push(...page.json.value);
      next = page.json['@odata.nextLink'];
      if (!next) return { items, deltaLink: page.json['@odata.deltaLink'], pages };
      expect(next).toContain('$skiptoken=');
    }
  }

  it('pages with nextLinks, ends with a deltaLink, then returns only changes and @removed', async () => {
    const ids: string[] = [];
    for (let day = 1; day <= 5; day++) {
      ids.push(
        (
          await call(
            'POST',
            'me/events',
            event({ start: utc(`2026-12-0${day}T09:00:00`), end: utc(`2026-12-0${day}T10:00:00`) }),
          )
        ).json.id,
      );
    }
    const initial = await round(`me/calendarView/delta?${window}`);
    expect(initial.pages).toBe(3);
    expect(initial.items.map((i) => i.id).sort()).toEqual([...ids].sort());
    expect(initial.deltaLink).toContain('$deltatoken=');

    await call('PATCH', `me/events/${ids[0]}`, { subject: 'Changed' });
    await call('DELETE', `me/events/${ids[1]}`);
    await call('PATCH', `me/events/${ids[2]}`, {
      start: utc('2027-06-01T09:00:00'),
      end: utc('2027-06-01T10:00:00'),
    });
    const outside = await call(
      'POST',
      'me/events',
      event({ start: utc('2027-08-01T09:00:00'), end: utc('2027-08-01T10:00:00') }),
    );
    const next = await round(initial.deltaLink);
    const changed = next.items.filter((i) => !i['@removed']).map((i) => i.id);
    const removed = next.items.filter((i) => i['@removed']);
    expect(changed).toEqual([ids[0]]);
    expect(removed.map((i) => i.id).sort()).toEqual([ids[1], ids[2], outside.json.id].sort());
    expect(removed[0]['@removed']).toEqual({ reason: 'deleted' });
    const quiet = await round(next.deltaLink);
    expect(quiet.items).toEqual([]);
  });

  it('an expired delta token is 410 SyncStateNotFound with a Location that starts over', async () => {
    const initial = await round(`me/calendarView/delta?${window}`);
    emulator.control.expireDeltaTokens();
    const gone = await call('GET', initial.deltaLink);
    expect(gone.status).toBe(410);
    expect(gone.json.error.code).toBe('SyncStateNotFound');
    const restart = gone.headers.get('location')!;
    expect(restart).toContain('startDateTime=');
    expect((await call('GET', restart)).status).toBe(200);
  });

  it('old generations fall out of the bounded token cache', async () => {
    emulator.control.configureDelta({ maxTokens: 2 });
    const oldest = await round(`me/calendarView/delta?${window}`);
    const newer = await round(oldest.deltaLink);
    await round(newer.deltaLink);
    expect((await call('GET', oldest.deltaLink)).status).toBe(410);
    emulator.control.configureDelta({ maxTokens: 32 });
  });
});

describe('subscriptions', () => {
  let hooks: HooksReceiver;
  beforeAll(async () => {
    hooks = await new HooksReceiver().start();
  });
  afterAll(async () => {
    await hooks?.stop();
  });
  const subscription = (extra: Record<string, unknown> = {}) => ({
    changeType: 'created,updated,deleted',
    notificationUrl: `${hooks.origin}/hooks/outlook?tenant=a`,
    lifecycleNotificationUrl: `${hooks.origin}/hooks/outlook/lifecycle`,
    resource: 'me/events',
    expirationDateTime: new Date(Date.now() + 3600_000).toISOString(),
    clientState: 'secret-state',
    ...extra,
  });

  it('a failed validation handshake is 400 and creates nothing', async () => {
    for (const echo of ['encoded', 'none', 'wrong-type'] as const) {
      hooks.echo = echo;
      const answer = await call('POST', 'subscriptions', subscription());
      expect(answer.status).toBe(400);
      expect(answer.json.error.message).toMatch(/validation/i);
    }
    hooks.echo = 'decoded';
    expect(emulator.control.subscriptions()).toEqual([]);
  });

  it('enforces the maximum expiration and lengthens short ones to 45 minutes', async () => {
    hooks.echo = 'decoded';
    const tooLong = await call(
      'POST',
      'subscriptions',
      subscription({ expirationDateTime: new Date(Date.now() + 4231 * 60_000).toISOString() }),
    );
    expect(tooLong.status).toBe(400);
    const short = await call(
      'POST',
      'subscriptions',
      subscription({ expirationDateTime: new Date(Date.now() + 60_000).toISOString() }),
    );
    expect(short.status).toBe(201);
    expect(Date.parse(short.json.expirationDateTime)).toBeGreaterThanOrEqual(Date.now() + 44 * 60_000);
    expect((await call('DELETE', `subscriptions/${short.json.id}`)).status).toBe(204);
    expect(
      (
        await call('PATCH', `subscriptions/${short.json.id}`, {
          expirationDateTime: new Date().toISOString(),
        })
      ).status,
    ).toBe(404);
  });

  it('batches change notifications, keeps the notificationUrl query, retries failed deliveries', async () => {
    hooks.echo = 'decoded';
    const created = await call('POST', 'subscriptions', subscription());
    expect(created.status).toBe(201);
    hooks.failNotifications = 1;
    const event1 = await call('POST', 'me/events', event());
    await call('PATCH', `me/events/${event1.json.id}`, { subject: 'x' });
    await emulator.control.notificationsIdle();
    const deliveries = emulator.control
      .deliveries()
      .filter((d) => d.kind === 'notification' && d.url.endsWith('?tenant=a'));
    expect(deliveries.map((d) => [d.attempt, d.outcome, d.status])).toEqual([
      [1, 'failed', 500],
      [2, 'delivered', 202],
    ]);
    const body = deliveries[1]!.body as { value: any[] };
    expect(body.value.map((n) => n.changeType)).toEqual(['created', 'updated']);
    expect(body.value[0]).toMatchObject({
      subscriptionId: created.json.id,
      clientState: 'secret-state',
      resourceData: { id: event1.json.id },
    });
    await call('DELETE', `subscriptions/${created.json.id}`);
  });
});

describe('faults and getSchedule', () => {
  it('injects 429 with a fractional Retry-After, 503 and 504 in Graph error shape', async () => {
    emulator.control.addFault({ kind: 429, count: 1, retryAfter: '2.128' });
    emulator.control.addFault({ kind: 503, count: 1 });
    emulator.control.addFault({ kind: 504, count: 1 });
    const limited = await call('GET', 'me/events');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2.128');
    expect(limited.json.error.code).toBe('TooManyRequests');
    const unavailable = await call('GET', 'me/events');
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get('retry-after')).toBeNull();
    expect((await call('GET', 'me/events')).status).toBe(504);
    expect((await call('GET', 'me/events')).status).toBe(200);
  });

  it('a seeded fraction of calls fails the same way every run', async () => {
    const run = async () => {
      emulator.control.clearFaults();
      emulator.control.addFault({ kind: 503, rate: 0.5, seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await call('GET', 'me/calendars')).status);
      return statuses;
    };
    const first = await run();
    expect(first).toContain(503);
    expect(first).toContain(200);
    expect(await run()).toEqual(first);
  });

  it('getSchedule encodes busy time in availabilityView', async () => {
    await call(
      'POST',
      `me/calendar/events`,
      event({ start: utc('2027-05-03T10:00:00'), end: utc('2027-05-03T11:00:00'), showAs: 'tentative' }),
    );
    const answer = await call('POST', 'me/calendar/getSchedule', {
      schedules: ['user@emulator.test', 'nobody@example.com'],
      startTime: utc('2027-05-03T09:00:00'),
      endTime: utc('2027-05-03T12:00:00'),
      availabilityViewInterval: 60,
    });
    expect(answer.json.value[0].availabilityView).toBe('010');
    expect(answer.json.value[1].error.responseCode).toBe('ErrorMailRecipientNotFound');
  });
});

describe('fault rules by call, kind and time', () => {
  const window = 'startDateTime=2026-11-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z';
  const prefer = { prefer: 'odata.maxpagesize=1' };
  beforeEach(async () => {
    emulator.control.reset();
    for (const day of [1, 2, 3]) {
      await call(
        'POST',
        'me/events',
        event({ start: utc(`2026-12-0${day}T09:00:00`), end: utc(`2026-12-0${day}T10:00:00`) }),
      );
    }
  });

  it('nth fails only the nth matching call, and count the ones after it', async () => {
    emulator.control.addFault({ kind: 503, nth: 2, count: 2, path: '/me/calendars' });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await call('GET', 'me/calendars')).status);
    expect(statuses).toEqual([200, 503, 503, 200, 200]);
    // Calls the rule does not match are not counted.
    expect((await call('GET', 'me/events')).status).toBe(200);
  });

  it('targets delta round starts apart from $skiptoken and $deltatoken continuations', async () => {
    emulator.control.addFault({ kind: 500, delta: 'skiptoken', nth: 1 });
    const first = await call('GET', `me/calendarView/delta?${window}`, undefined, prefer);
    expect(first.status).toBe(200);
    const next = first.json['@odata.nextLink'] as string;
    expect((await call('GET', next, undefined, prefer)).status).toBe(500);
    expect((await call('GET', next, undefined, prefer)).status).toBe(200);

    emulator.control.clearFaults();
    emulator.control.addFault({ kind: 503, delta: 'start' });
    expect((await call('GET', `me/calendarView/delta?${window}`)).status).toBe(503);
    expect((await call('GET', next, undefined, prefer)).status).toBe(200);
    expect((await call('GET', 'me/events')).status).toBe(200);

    emulator.control.clearFaults();
    emulator.control.addFault({ kind: 503, delta: 'continuation' });
    expect((await call('GET', `me/calendarView/delta?${window}`, undefined, prefer)).status).toBe(200);
    expect((await call('GET', next, undefined, prefer)).status).toBe(503);
  });

  it('a 410 fault on a later page answers SyncStateNotFound with a working Location', async () => {
    emulator.control.addFault({ kind: 410, delta: 'skiptoken', nth: 1 });
    const first = await call('GET', `me/calendarView/delta?${window}`, undefined, prefer);
    const gone = await call('GET', first.json['@odata.nextLink'] as string, undefined, prefer);
    expect(gone.status).toBe(410);
    expect(gone.json.error.code).toBe('SyncStateNotFound');
    const location = gone.headers.get('location')!;
    expect(location).toBe(
      `${emulator.apiUrl}/me/calendarView/delta?$deltatoken=&startDateTime=2026-11-01T00:00:00.000Z&endDateTime=2027-01-01T00:00:00.000Z`,
    );
    let page = await call('GET', location, undefined, prefer);
    const ids: string[] = [];
    for (;;) {
      expect(page.status).toBe(200);
      ids.push(...(page.json.value as { id: string }[]).map((i) => i.id));
      if (!page.json['@odata.nextLink']) break;
      page = await call('GET', page.json['@odata.nextLink'] as string, undefined, prefer);
    }
    expect(ids).toHaveLength(3);
  });

  it('a dead $skiptoken is 410 with the window in its Location; an unreadable one is 400', async () => {
    const first = await call('GET', `me/calendarView/delta?${window}`, undefined, prefer);
    emulator.control.expireDeltaTokens();
    const gone = await call('GET', first.json['@odata.nextLink'] as string);
    expect(gone.status).toBe(410);
    const restart = await call('GET', gone.headers.get('location')!);
    expect(restart.status).toBe(200);
    expect(restart.json.value).toHaveLength(3);
    const junk = await call('GET', 'me/calendarView/delta?$skiptoken=not-a-token');
    expect(junk.status).toBe(400);
  });

  it('from and until bound a rule on the emulator clock', async () => {
    const now = emulator.control.state.clock();
    emulator.control.addFault({
      kind: 503,
      from: now + 60_000,
      until: new Date(now + 120_000).toISOString(),
    });
    expect((await call('GET', 'me/calendars')).status).toBe(200);
    emulator.control.advanceTime(90_000);
    expect((await call('GET', 'me/calendars')).status).toBe(503);
    emulator.control.advanceTime(60_000);
    expect((await call('GET', 'me/calendars')).status).toBe(200);
  });

  it('a delay fault answers normally after delayMs', async () => {
    emulator.control.addFault({ kind: 'delay', delayMs: 300, nth: 1 });
    const started = Date.now();
    const slow = await call('GET', 'me/calendars');
    expect(slow.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(emulator.control.faultsInjected).toBe(1);
  });

  it('over HTTP too: POST /__control/faults takes the same rule', async () => {
    const response = await fetch(`${emulator.url}/__control/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 503, nth: 1, delta: 'start' }),
    });
    expect(response.status).toBe(200);
    expect((await call('GET', `me/calendarView/delta?${window}`)).status).toBe(503);
  });
});

describe('documented paths only, links from the address called', () => {
  beforeEach(() => {
    emulator.control.reset();
  });

  it('refuses delta on other calendars and on events as Graph does', async () => {
    const cal = emulator.control.createCalendar('other').id;
    const window = 'startDateTime=2026-11-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z';
    for (const path of [
      `me/calendars/${cal}/calendarView/delta?${window}`,
      `me/calendar/calendarView/delta?${window}`,
      'me/events/delta',
      `me/calendars/${cal}/events/delta`,
    ]) {
      const refused = await call('GET', path);
      expect(refused.status, path).toBe(400);
      expect(refused.json.error).toMatchObject({
        code: 'BadRequest',
        message: "Unsupported request: Change tracking is not supported against 'microsoft.graph.event'.",
      });
    }
    expect((await call('GET', `users/someone/calendarView/delta?${window}`)).status).toBe(200);
    expect((await call('GET', `me/calendars/${cal}/calendarView?${window}`)).status).toBe(200);
  });

  it('links carry the Host the client called', async () => {
    for (let day = 1; day <= 3; day++) await call('POST', 'me/events', event());
    const port = new URL(emulator.url).port;
    const viaLocalhost = `http://localhost:${port}/v1.0`;
    const { accessToken } = emulator.control.mintToken();
    const response = await fetch(`${viaLocalhost}/me/events?$top=1`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    const body = (await response.json()) as Record<string, string>;
    expect(body['@odata.nextLink']).toMatch(new RegExp(`^${viaLocalhost}/me/events\\?`));
    expect(body['@odata.context']).toMatch(new RegExp(`^${viaLocalhost}/\\$metadata`));
    const direct = await call('GET', 'me/events?$top=1');
    expect(direct.json['@odata.nextLink']).toMatch(new RegExp(`^${emulator.apiUrl}/me/events\\?`));
    expect(emulator.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect(emulator.caCertificate).toBeNull();
  });
});

describe('lifecycle notifications from the subscription expiry', () => {
  let hooks: HooksReceiver;
  beforeAll(async () => {
    hooks = await new HooksReceiver().start();
  });
  afterAll(async () => {
    await hooks?.stop();
  });
  beforeEach(() => {
    emulator.control.reset();
    hooks.echo = 'decoded';
  });

  const lifecycles = (id: string) =>
    emulator.control
      .deliveries()
      .filter((d) => d.kind === 'lifecycle')
      .map((d) => (d.body as { value: { subscriptionId: string; lifecycleEvent: string }[] }).value[0]!)
      .filter((n) => n.subscriptionId === id)
      .map((n) => n.lifecycleEvent);

  it('reauthorizationRequired once 720 minutes are left, then every 15 minutes in the last 4 hours', async () => {
    const HOUR = 3_600_000;
    const created = await call('POST', 'subscriptions', {
      changeType: 'created,updated,deleted',
      notificationUrl: `${hooks.origin}/hooks/outlook`,
      lifecycleNotificationUrl: `${hooks.origin}/hooks/outlook/lifecycle`,
      resource: 'me/events',
      expirationDateTime: new Date(emulator.control.state.clock() + 24 * HOUR).toISOString(),
      clientState: 'state',
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    emulator.control.advanceTime(11 * HOUR);
    await emulator.control.notificationsIdle();
    expect(lifecycles(id)).toEqual([]);
    emulator.control.advanceTime(1.5 * HOUR);
    await emulator.control.notificationsIdle();
    expect(lifecycles(id)).toEqual(['reauthorizationRequired']);
    emulator.control.advanceTime(HOUR);
    await emulator.control.notificationsIdle();
    expect(lifecycles(id)).toHaveLength(1);
    emulator.control.advanceTime(7 * HOUR);
    emulator.control.advanceTime(5 * 60_000);
    await emulator.control.notificationsIdle();
    expect(lifecycles(id)).toHaveLength(2);
    emulator.control.advanceTime(15 * 60_000);
    await emulator.control.notificationsIdle();
    expect(lifecycles(id)).toEqual([
      'reauthorizationRequired',
      'reauthorizationRequired',
      'reauthorizationRequired',
    ]);
    const hook = await hooks.waitFor('/hooks/outlook/lifecycle');
    expect(hook.body).toMatchObject({ value: [{ subscriptionId: id, clientState: 'state' }] });

    // A renewal moves the expiry: no challenge until 720 minutes before the new one.
    const renewed = await call('PATCH', `subscriptions/${id}`, {
      expirationDateTime: new Date(emulator.control.state.clock() + 48 * HOUR).toISOString(),
    });
    expect(renewed.status).toBe(200);
    emulator.control.advanceTime(HOUR);
    await emulator.control.notificationsIdle();
    expect(lifecycles(id)).toHaveLength(3);
    await emulator.control.sendLifecycle(id, 'missed');
    expect(lifecycles(id).at(-1)).toBe('missed');
  });

  it('a me/events subscription hears about every calendar of the mailbox', async () => {
    const other = emulator.control.createCalendar('other').id;
    const created = await call('POST', 'subscriptions', {
      changeType: 'created',
      notificationUrl: `${hooks.origin}/hooks/mailbox`,
      resource: 'me/events',
      expirationDateTime: new Date(Date.now() + 3_600_000).toISOString(),
      clientState: 'state',
    });
    const made = await call('POST', `me/calendars/${other}/events`, event());
    await hooks.waitFor('/hooks/mailbox', (body) =>
      (body as { value: { resourceData: { id: string } }[] }).value.some(
        (n) => n.resourceData.id === made.json.id,
      ),
    );
    for (const resource of ['me/calendars/' + other + '/events', 'me/calendar/events']) {
      const refused = await call('POST', 'subscriptions', { ...created.json, id: undefined, resource });
      expect(refused.status, resource).toBe(400);
      expect(refused.json.error.code).toBe('ExtensionError');
    }
  });
});

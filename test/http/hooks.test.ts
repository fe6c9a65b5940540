import type { KyselyPlugin, RootOperationNode } from 'kysely';
import { createHash, randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { acceptOutlookNotifications } from '../../src/calendar/index.js';
import { HOOK_RATE_LIMIT_PER_MINUTE } from '../../src/http/routes/hooks.js';
import { describeOnBackends } from '../support/backends.js';
import type { TestApp } from '../support/test-app.js';

type Watched = { connectionId: string; channelId: string; secret: string; resourceId: string | null };

/**
 * A connection with a push channel, stored as a sync leaves them (the secret only as its SHA-256), so
 * the notifications below go through the same routes, and the same checks, as the providers' do.
 */
async function watchedConnection(
  app: TestApp,
  provider: 'google' | 'outlook',
  resourceId: string | null,
): Promise<Watched> {
  const resource = (
    await app.request('POST', '/resources', { body: { name: 'Hooked', kind: 'room', time_zone: 'UTC' } })
  ).json<{ resource_id: string }>();
  const { connection_id: connectionId } = await app.database.db
    .insertInto('calendar_connections')
    .values({
      organization_id: app.organizationId,
      resource_id: resource.resource_id,
      provider,
      calendar_id: `cal-${randomUUID()}`,
      status: 'active',
      direction: 'two_way',
      frequency_minutes: 15,
      realtime: true,
      conflict_policy: 'sched_wins',
      blocks_availability: true,
      settings: JSON.stringify({}),
    })
    .returning('connection_id')
    .executeTakeFirstOrThrow();
  const watched = { connectionId, channelId: `ch-${randomUUID()}`, secret: randomUUID(), resourceId };
  await app.database.db
    .insertInto('calendar_watches')
    .values({
      connection_id: connectionId,
      provider,
      channel_id: watched.channelId,
      resource_id: resourceId,
      secret_hash: createHash('sha256').update(watched.secret).digest('hex'),
      expires_at: new Date(app.clock.now + 86_400_000),
    })
    .execute();
  return watched;
}

async function syncRequests(app: TestApp, connectionId: string): Promise<number> {
  const row = await app.database.db
    .selectFrom('calendar_connections')
    .select('sync_requests')
    .where('connection_id', '=', connectionId)
    .executeTakeFirstOrThrow();
  return row.sync_requests;
}

async function renewNow(app: TestApp, connectionId: string): Promise<boolean> {
  const row = await app.database.db
    .selectFrom('calendar_watches')
    .select('renew_now')
    .where('connection_id', '=', connectionId)
    .executeTakeFirstOrThrow();
  return row.renew_now;
}

describeOnBackends('inbound provider notifications', (t) => {
  const google = (headers: Record<string, string>) =>
    t().request('POST', '/hooks/google', { key: null, headers });

  it('a Google notification of a held channel, with its token and resource id, makes the connection due', async () => {
    const watched = await watchedConnection(t(), 'google', 'res-1');
    const headers = {
      'x-goog-channel-id': watched.channelId,
      'x-goog-channel-token': watched.secret,
      'x-goog-resource-id': 'res-1',
      'x-goog-resource-state': 'exists',
      'x-goog-message-number': '2',
    };
    const sent = async (changed: Record<string, string | undefined>) => {
      const before = await syncRequests(t(), watched.connectionId);
      const merged = Object.fromEntries(
        Object.entries({ ...headers, ...changed }).filter(([, value]) => value !== undefined),
      ) as Record<string, string>;
      const res = await google(merged);
      // Always 200: anything else makes Google retry, forever for a channel we ignore.
      expect(res.statusCode).toBe(200);
      return (await syncRequests(t(), watched.connectionId)) - before;
    };

    expect(await sent({})).toBe(1);
    expect(await sent({ 'x-goog-resource-state': 'not_exists' })).toBe(1);
    // Header names in any case, as HTTP has them.
    expect(await sent({ 'X-Goog-Channel-ID': watched.channelId, 'x-goog-channel-id': undefined })).toBe(1);
    // "sync" only confirms a new channel.
    expect(await sent({ 'x-goog-resource-state': 'sync' })).toBe(0);
    expect(await sent({ 'x-goog-channel-token': 'forged' })).toBe(0);
    expect(await sent({ 'x-goog-channel-token': undefined })).toBe(0);
    expect(await sent({ 'x-goog-resource-id': 'res-2' })).toBe(0);
    expect(await sent({ 'x-goog-channel-id': `ch-${randomUUID()}` })).toBe(0);
    expect(await sent({ 'x-goog-channel-id': undefined })).toBe(0);
    expect(await sent({ 'x-goog-resource-state': undefined })).toBe(0);
    // Google always sends a resource id and a message number; a request without is no notification.
    expect(await sent({ 'x-goog-resource-id': undefined })).toBe(0);
    expect(await sent({ 'x-goog-message-number': undefined })).toBe(0);
    expect(await sent({ 'x-goog-resource-state': 'changed' })).toBe(0);
  });

  it('a Google notification for a channel of another provider is ignored', async () => {
    const watched = await watchedConnection(t(), 'outlook', null);
    const res = await google({
      'x-goog-channel-id': watched.channelId,
      'x-goog-channel-token': watched.secret,
      'x-goog-resource-id': 'res-1',
      'x-goog-resource-state': 'exists',
      'x-goog-message-number': '2',
    });
    expect(res.statusCode).toBe(200);
    expect(await syncRequests(t(), watched.connectionId)).toBe(0);
  });

  it('answers Graph validation handshakes with the token as plain text on both routes', async () => {
    for (const route of ['/hooks/outlook', '/hooks/outlook/lifecycle']) {
      const res = await t().request('POST', route, {
        key: null,
        query: { validationToken: 'Validation: token & more' },
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body).toBe('Validation: token & more');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('Graph change notifications make due the connections whose subscription and clientState match', async () => {
    const first = await watchedConnection(t(), 'outlook', null);
    const second = await watchedConnection(t(), 'outlook', null);
    const forged = await watchedConnection(t(), 'outlook', null);
    const item = (watched: Watched, clientState: string | undefined) => ({
      subscriptionId: watched.channelId,
      ...(clientState === undefined ? {} : { clientState }),
      changeType: 'updated',
      resource: `Users/u/Events/e-${randomUUID()}`,
      resourceData: { id: `e-${randomUUID()}` },
    });
    const res = await t().request('POST', '/hooks/outlook', {
      key: null,
      body: {
        value: [
          item(first, first.secret),
          item(first, first.secret),
          item(second, second.secret),
          item(forged, 'not the secret'),
          item(forged, undefined),
          { subscriptionId: `sub-${randomUUID()}`, clientState: first.secret, changeType: 'created' },
        ],
      },
    });
    expect(res.statusCode).toBe(202);
    // Two notifications for one connection make it due once.
    expect(await syncRequests(t(), first.connectionId)).toBe(1);
    expect(await syncRequests(t(), second.connectionId)).toBe(1);
    expect(await syncRequests(t(), forged.connectionId)).toBe(0);
  });

  it('looks at the first 1000 notifications of a request only', async () => {
    const early = await watchedConnection(t(), 'outlook', null);
    const late = await watchedConnection(t(), 'outlook', null);
    const item = (watched: Watched) => ({
      subscriptionId: watched.channelId,
      clientState: watched.secret,
      changeType: 'updated',
    });
    const value = [...Array.from({ length: 999 }, () => item(early)), item(early), item(late)];
    for (const route of ['/hooks/outlook', '/hooks/outlook/lifecycle']) {
      const body = { value: value.map((entry) => ({ ...entry, lifecycleEvent: 'missed' })) };
      expect((await t().request('POST', route, { key: null, body })).statusCode).toBe(202);
    }
    expect(await syncRequests(t(), early.connectionId)).toBe(2);
    expect(await syncRequests(t(), late.connectionId)).toBe(0);
  });

  it('Graph bodies that are not notifications change nothing', async () => {
    const watched = await watchedConnection(t(), 'outlook', null);
    for (const body of [
      {},
      { value: 'x' },
      { value: [null, 7, 'x'] },
      { value: [{ subscriptionId: 42, clientState: watched.secret }] },
      [{ subscriptionId: watched.channelId, clientState: watched.secret }],
    ]) {
      for (const route of ['/hooks/outlook', '/hooks/outlook/lifecycle']) {
        const res = await t().request('POST', route, { key: null, body });
        expect(res.statusCode, `${route} ${JSON.stringify(body)}`).toBeLessThan(500);
      }
    }
    expect(await syncRequests(t(), watched.connectionId)).toBe(0);
    expect(await renewNow(t(), watched.connectionId)).toBe(false);
  });

  it('Graph lifecycle notifications: reauthorization and removal renew the channel, missed only syncs', async () => {
    const reauthorize = await watchedConnection(t(), 'outlook', null);
    const removed = await watchedConnection(t(), 'outlook', null);
    const missed = await watchedConnection(t(), 'outlook', null);
    const forged = await watchedConnection(t(), 'outlook', null);
    const res = await t().request('POST', '/hooks/outlook/lifecycle', {
      key: null,
      body: {
        value: [
          {
            subscriptionId: reauthorize.channelId,
            clientState: reauthorize.secret,
            lifecycleEvent: 'reauthorizationRequired',
          },
          {
            subscriptionId: removed.channelId,
            clientState: removed.secret,
            lifecycleEvent: 'subscriptionRemoved',
          },
          { subscriptionId: missed.channelId, clientState: missed.secret, lifecycleEvent: 'missed' },
          { subscriptionId: forged.channelId, clientState: 'forged', lifecycleEvent: 'subscriptionRemoved' },
        ],
      },
    });
    expect(res.statusCode).toBe(202);
    for (const watched of [reauthorize, removed, missed]) {
      expect(await syncRequests(t(), watched.connectionId)).toBe(1);
    }
    expect(await renewNow(t(), reauthorize.connectionId)).toBe(true);
    expect(await renewNow(t(), removed.connectionId)).toBe(true);
    expect(await renewNow(t(), missed.connectionId)).toBe(false);
    expect(await syncRequests(t(), forged.connectionId)).toBe(0);
    expect(await renewNow(t(), forged.connectionId)).toBe(false);
  });

  it('looks up every channel of a notification body in one query, however many items it has', async () => {
    const connections = await Promise.all(
      Array.from({ length: 5 }, () => watchedConnection(t(), 'outlook', null)),
    );
    const seen: RootOperationNode['kind'][] = [];
    const counting: KyselyPlugin = {
      transformQuery: (args) => {
        seen.push(args.node.kind);
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    const value = connections.flatMap((watched) =>
      Array.from({ length: 20 }, () => ({
        subscriptionId: watched.channelId,
        clientState: watched.secret,
        changeType: 'updated',
      })),
    );
    value.push(
      ...Array.from({ length: 50 }, () => ({
        subscriptionId: `sub-${randomUUID()}`,
        clientState: 'x',
        changeType: 'updated',
      })),
    );
    const due = await acceptOutlookNotifications(
      { ...t().calendarDeps, db: t().database.db.withPlugin(counting) },
      { value },
    );
    expect(due).toBe(5);
    expect(seen.filter((kind) => kind === 'SelectQueryNode')).toHaveLength(1);
    expect(seen.filter((kind) => kind === 'UpdateQueryNode')).toHaveLength(1);
    for (const watched of connections) expect(await syncRequests(t(), watched.connectionId)).toBe(1);
  });

  it('limits /hooks/* per client address with a 429 problem and Retry-After; other addresses go on', async () => {
    const from = (remoteAddress: string) =>
      t().app.inject({ method: 'POST', url: '/hooks/google', remoteAddress });
    for (let i = 0; i < HOOK_RATE_LIMIT_PER_MINUTE; i++) {
      const res = await from('127.0.0.77');
      if (res.statusCode !== 200) expect.fail(`request ${i + 1} answered ${res.statusCode}`);
    }
    const limited = await from('127.0.0.77');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    expect(limited.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED', title: 'Too Many Requests' });
    expect((await from('127.0.0.78')).statusCode).toBe(200);
    // Only the hooks are limited: the API itself answers the same address as before.
    const api = await t().app.inject({ method: 'GET', url: '/resources', remoteAddress: '127.0.0.77' });
    expect(api.statusCode).toBe(401);
  });
});

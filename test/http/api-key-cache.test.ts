import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createDependencies, type Dependencies, systemClock } from '../../src/dependencies.js';
import { type App, buildApp } from '../../src/http/build-app.js';
import { SecretBox } from '../../src/security/secret-box.js';
import { ApiKeyCache, LISTENER_PROBE_MS, LISTENER_SILENCE_MS } from '../../src/services/api-key-cache.js';
import type { Authenticated } from '../../src/services/api-keys.js';
import { createBootstrapKey } from '../../src/services/api-keys.js';
import type { Db } from '../../src/storage/database.js';
import { type DatabaseHandle, LISTENER_CHECK_MS, openDatabase } from '../../src/storage/open-database.js';
import { type Backend, backends } from '../support/backends.js';
import { databaseUrl, withAdminClient } from '../support/postgres.js';
import { waitFor } from '../support/wait-for.js';

/** A revoked key is refused by every process within this long after the revocation's commit. */
const REFUSED_WITHIN_MS = 100;

const found = (apiKeyId: string): Authenticated => ({ organizationId: 'org', apiKeyId, scopes: ['read'] });

describe('the API key cache', () => {
  const clock = { now: 0 };
  const cacheOf = (options: { maxEntries?: number; silenceMs?: number } = {}) => {
    const cache = new ApiKeyCache({ ...options, maxAgeMs: 60_000, now: () => clock.now });
    cache.notify('probe');
    return cache;
  };

  it('serves what it verified, by hash, until the key is notified, and keeps no more than its bound', () => {
    const cache = cacheOf({ maxEntries: 2 });
    cache.fill('h1', found('k1'), cache.ticket());
    cache.fill('h2', found('k2'), cache.ticket());
    expect(cache.get('h1')?.apiKeyId).toBe('k1');
    // h1 was used last, so h2 is the one a third key evicts.
    cache.fill('h3', found('k3'), cache.ticket());
    expect(cache.size).toBe(2);
    expect(cache.get('h2')).toBeUndefined();
    expect(cache.get('h1')?.apiKeyId).toBe('k1');
    cache.notify('k1');
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.get('h3')?.apiKeyId).toBe('k3');
  });

  it('reads a key again after its maximum age', () => {
    const cache = cacheOf();
    cache.fill('h1', found('k1'), cache.ticket());
    clock.now += 59_999;
    expect(cache.get('h1')).toBeDefined();
    clock.now += 1;
    expect(cache.get('h1')).toBeUndefined();
  });

  it('keeps no result read while a notification arrived, and drops everything after a reconnect or a truncate', () => {
    const cache = cacheOf();
    const ticket = cache.ticket();
    cache.notify('k-other');
    cache.fill('h1', found('k1'), ticket);
    expect(cache.get('h1')).toBeUndefined();
    for (const payload of [undefined, '']) {
      cache.fill('h1', found('k1'), cache.ticket());
      cache.fill('h2', found('k2'), cache.ticket());
      cache.notify(payload);
      expect(cache.size).toBe(0);
    }
  });

  it('is not used while the listener is silent, and again once it is heard', () => {
    const cache = cacheOf({ silenceMs: 1000 });
    cache.fill('h1', found('k1'), cache.ticket());
    clock.now += 999;
    expect(cache.get('h1')).toBeDefined();
    clock.now += 1;
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.ticket()).toBeUndefined();
    cache.notify('probe');
    expect(cache.get('h1')).toBeDefined();
  });
});

/** Two handles on one database: two pools on PostgreSQL, as two processes have; PGlite has one. */
async function openShared(backend: Backend): Promise<{
  handles: [DatabaseHandle, DatabaseHandle];
  url: string | undefined;
  close(): Promise<void>;
}> {
  if (backend.name === 'pglite') {
    const handle = await backend.open();
    return { handles: [handle, handle], url: undefined, close: () => handle.close() };
  }
  const template = inject('postgresTemplate');
  if (!template) throw new Error('PostgreSQL is not available in this run');
  const name = `${template}_keys_${process.pid}`;
  await withAdminClient((client) => client.query(`create database "${name}" template "${template}"`));
  const url = databaseUrl(name);
  const first = await openDatabase({ kind: 'postgres', url, poolSize: 3 });
  const second = await openDatabase({ kind: 'postgres', url, poolSize: 3 });
  return {
    handles: [first, second],
    url,
    close: async () => {
      await first.close();
      await second.close();
      await withAdminClient((client) => client.query(`drop database if exists "${name}" with (force)`));
    },
  };
}

type Server = { app: App; deps: Dependencies };

async function startServer(database: DatabaseHandle): Promise<Server> {
  const config = loadConfig({ LOG_LEVEL: 'silent', SCHED_CALENDAR_PROVIDERS: 'none' });
  const deps = await createDependencies(config, {
    database,
    secretBox: new SecretBox(randomBytes(32)),
    processMetrics: false,
  });
  return { app: await deps.buildApp(), deps };
}

async function stopServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  await server.app.close();
  await server.deps.close();
}

async function status(app: App, key: string, method: 'GET' | 'POST' = 'GET'): Promise<number> {
  const response = await app.inject({
    method,
    url: '/resources',
    headers: { authorization: `Bearer ${key}` },
    ...(method === 'POST' ? { payload: { name: 'Ada', kind: 'person', time_zone: 'UTC' } } : {}),
  });
  return response.statusCode;
}

/** Milliseconds from now until `app` answers `expected` for `key`; fails after `timeoutMs`. */
async function msUntil(
  app: App,
  key: string,
  expected: number,
  method: 'GET' | 'POST' = 'GET',
  timeoutMs = 5000,
): Promise<number> {
  const started = performance.now();
  for (;;) {
    const got = await status(app, key, method);
    const elapsed = performance.now() - started;
    if (got === expected) return elapsed;
    if (elapsed > timeoutMs) throw new Error(`still ${got} after ${timeoutMs} ms, not ${expected}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Revokes without the trigger (as a replica applying changes would): no notification is sent. */
async function revokeUnnotified(db: Db, apiKeyId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    await trx
      .updateTable('api_keys')
      .set({ revoked_at: new Date() })
      .where('api_key_id', '=', apiKeyId)
      .execute();
  });
}

for (const backend of backends) {
  const suffix = backend.skipReason ? ` — SKIPPED: ${backend.skipReason}` : '';
  describe.skipIf(backend.skipReason)(`API keys cached by two apps on ${backend.name}${suffix}`, () => {
    let shared: Awaited<ReturnType<typeof openShared>> | undefined;
    let a: Server | undefined;
    let b: Server | undefined;
    const servers = () => {
      if (!a || !b || !shared) throw new Error('the apps did not start');
      return { a: a.app, b: b.app, db: shared.handles[0].db };
    };
    const newKey = async (organization = 'acme', scopes: ('read' | 'write' | 'admin')[] = ['write']) =>
      createBootstrapKey(servers().db, { organization, scopes });

    beforeAll(async () => {
      shared = await openShared(backend);
      a = await startServer(shared.handles[0]);
      b = await startServer(shared.handles[1]);
    });
    afterAll(async () => {
      await stopServer(a);
      await stopServer(b);
      await shared?.close();
    });

    it('serves a key it verified from memory: a change that sends no notification is not seen', async () => {
      const { a, b, db } = servers();
      const key = await newKey();
      expect(await status(b, key.key)).toBe(200);
      await revokeUnnotified(db, key.apiKeyId);
      expect(await status(b, key.key)).toBe(200);
      // The other app never verified this key, so it reads the database.
      expect(await status(a, key.key)).toBe(401);
    });

    it(`refuses a key revoked through the other app within ${REFUSED_WITHIN_MS} ms, and at once in the app that revoked it`, async () => {
      const { a, b } = servers();
      const admin = await newKey('acme', ['admin']);
      const key = await newKey();
      expect(await status(a, key.key)).toBe(200);
      expect(await status(b, key.key)).toBe(200);
      const revoked = await a.inject({
        method: 'DELETE',
        url: `/api-keys/${key.apiKeyId}`,
        headers: { authorization: `Bearer ${admin.key}` },
      });
      expect(revoked.statusCode).toBe(204);
      expect(await status(a, key.key)).toBe(401);
      expect(await msUntil(b, key.key, 401)).toBeLessThan(REFUSED_WITHIN_MS);
    });

    it(`sees changes made outside the API in both apps within ${REFUSED_WITHIN_MS} ms: scopes, and the organization deleted`, async () => {
      const { a, b, db } = servers();
      const key = await newKey('initech', ['write']);
      for (const app of [a, b]) expect(await status(app, key.key, 'POST')).toBe(201);
      await db
        .updateTable('api_keys')
        .set({ scopes: ['read'] })
        .where('api_key_id', '=', key.apiKeyId)
        .execute();
      for (const app of [a, b])
        expect(await msUntil(app, key.key, 403, 'POST')).toBeLessThan(REFUSED_WITHIN_MS);

      for (const app of [a, b]) expect(await status(app, key.key)).toBe(200);
      await db.deleteFrom('organizations').where('organization_id', '=', key.organizationId).execute();
      for (const app of [a, b]) expect(await msUntil(app, key.key, 401)).toBeLessThan(REFUSED_WITHIN_MS);
    });

    it('forgets every key when the table is truncated', async () => {
      const { a, b, db } = servers();
      const key = await newKey('umbrella');
      for (const app of [a, b]) expect(await status(app, key.key)).toBe(200);
      // Only the keys go: the organizations and everything else stay.
      await sql`truncate api_keys`.execute(db);
      for (const app of [a, b]) expect(await msUntil(app, key.key, 401)).toBeLessThan(REFUSED_WITHIN_MS);
    });
  });
}

/**
 * A TCP relay in front of PostgreSQL that can go silent: bytes stop flowing both ways and nothing is
 * closed, as with a half-open connection; new connections are refused until it resumes.
 */
async function startRelay(
  target: URL,
): Promise<{ port: number; stall(): void; resume(): void; close(): Promise<void> }> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let stalled = false;
  const server = net.createServer((inbound) => {
    if (stalled) {
      inbound.destroy();
      return;
    }
    const outbound = net.connect(Number(target.port || 5432), target.hostname);
    const pair: [net.Socket, net.Socket] = [inbound, outbound];
    pairs.add(pair);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const end = () => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', end).on('close', end);
    outbound.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    stall: () => {
      stalled = true;
      for (const [inbound, outbound] of pairs) {
        inbound.unpipe(outbound);
        outbound.unpipe(inbound);
        inbound.pause();
        outbound.pause();
      }
    },
    resume: () => {
      stalled = false;
      for (const [inbound, outbound] of pairs) {
        inbound.destroy();
        outbound.destroy();
      }
    },
    close: async () => {
      for (const [inbound, outbound] of pairs) {
        inbound.destroy();
        outbound.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const postgres = backends.find((backend) => backend.name === 'postgres')!;
describe.skipIf(postgres.skipReason)(
  `API keys while the listening connection is lost on postgres${postgres.skipReason ? ` — SKIPPED: ${postgres.skipReason}` : ''}`,
  () => {
    let shared: Awaited<ReturnType<typeof openShared>> | undefined;
    let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
    let relayed: DatabaseHandle | undefined;
    let server: Server | undefined;

    beforeAll(async () => {
      shared = await openShared(postgres);
      const url = new URL(shared.url!);
      relay = await startRelay(url);
      const through = new URL(url);
      through.host = `127.0.0.1:${relay.port}`;
      relayed = await openDatabase({ kind: 'postgres', url: through.toString(), poolSize: 1 });
      // Queries go straight to the database; only the listening connection passes the relay.
      const listener = relayed;
      server = await startServer({
        ...shared.handles[0],
        listen: (channel, onNotify) => listener.listen(channel, onNotify),
      });
    });
    afterAll(async () => {
      await stopServer(server);
      await relayed?.close();
      await relay?.close();
      await shared?.close();
    });

    /** Whether the app serves keys from memory right now: a key revoked without notification still works. */
    const servesFromMemory = async () => {
      const db = shared!.handles[0].db;
      const key = await createBootstrapKey(db, { organization: 'acme', scopes: ['read'] });
      if ((await status(server!.app, key.key)) !== 200) return false;
      await revokeUnnotified(db, key.apiKeyId);
      return (await status(server!.app, key.key)) === 200;
    };

    it('reads keys from the database while the listener is silent, and serves from memory once it is back', async () => {
      await waitFor('the cache in use', servesFromMemory);
      const db = shared!.handles[0].db;
      const key = await createBootstrapKey(db, { organization: 'acme', scopes: ['read'] });
      expect(await status(server!.app, key.key)).toBe(200);
      relay!.stall();
      // The revocation's notification could never arrive; the app must stop trusting its memory anyway.
      await revokeUnnotified(db, key.apiKeyId);
      const refusedAfter = await msUntil(server!.app, key.key, 401);
      expect(refusedAfter).toBeLessThanOrEqual(LISTENER_SILENCE_MS + LISTENER_PROBE_MS);
      // Sooner than the listener itself can notice the silence and reconnect.
      expect(refusedAfter).toBeLessThan(LISTENER_CHECK_MS);
      expect(await servesFromMemory()).toBe(false);
      relay!.resume();
      await waitFor('the cache in use again', servesFromMemory, 15_000, 200);
    });
  },
);

describe('an app built without a listener', () => {
  const pglite = backends.find((backend) => backend.name === 'pglite')!;
  let database: DatabaseHandle | undefined;
  let app: App | undefined;
  beforeAll(async () => {
    database = await pglite.open();
    app = await buildApp({ db: database.db, databaseKind: database.kind, clock: systemClock });
  });
  afterAll(async () => {
    await app?.close();
    await database?.close();
  });

  it('keeps no key in memory: every request reads it', async () => {
    const key = await createBootstrapKey(database!.db, { organization: 'acme', scopes: ['read'] });
    expect(await status(app!, key.key)).toBe(200);
    await revokeUnnotified(database!.db, key.apiKeyId);
    expect(await status(app!, key.key)).toBe(401);
  });
});

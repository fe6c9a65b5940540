import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { keysRotateCommand, keysStatusCommand } from '../../src/cli/commands.js';
import { loadConfig } from '../../src/config.js';
import { createDependencies, type Dependencies } from '../../src/dependencies.js';
import type { App } from '../../src/http/build-app.js';
import { parseKeyMaterial } from '../../src/security/keys.js';
import { countSealedValues, resealAll, SEALED_COLUMNS } from '../../src/security/rotation.js';
import { SecretBox, sealedKeyVersion, UnknownKeyVersionError } from '../../src/security/secret-box.js';
import { createBootstrapKey } from '../../src/services/api-keys.js';
import { type DatabaseHandle, openDatabase } from '../../src/storage/open-database.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/emulator.js';
import { providerEnvironment } from '../emulators/environment.js';
import { backends } from '../support/backends.js';
import { calDavServerSkipReason, startCalDavServer, type CalDavServer } from '../support/caldav-servers.js';
import { postgresUnavailableReason } from '../support/postgres.js';
import { roundTheClockWeekly } from '../support/schedules.js';
import { cloneTemplateDatabase, makeTempDir, runCli } from '../support/spawn-server.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Key rotation as an operator runs it: values sealed under key version 1 in every sealed column,
 * `sched keys rotate`, and then every value under version 2, opened by a process holding only that
 * key, while a process holding only the old one can no longer open any.
 */

const pglite = backends.find((backend) => backend.name === 'pglite')!;
const caldavSkip = calDavServerSkipReason('radicale');
const postgresSkip = await postgresUnavailableReason();
// Real time: the standard webhook library checks the signed timestamp against its own clock.
const NOW = Math.floor(Date.now() / 1000) * 1000;

const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('base64');
/** Every process, before: the one key, written as it always was (version 1). */
const OLD_ONLY = k1;
/** The new key deployed beside the old one, and current. */
const BOTH = `1:${k1},2:${k2}`;
/** After: the new key alone, under its version. */
const NEW_ONLY = `2:${k2}`;

type Harness = { caldav: CalDavServer; google: GoogleEmulator; receiver: WebhookReceiver };

/** An app built as sched serve builds it, with the keys its environment gives. */
type KeyedApp = {
  deps: Dependencies;
  app: App;
  request(
    method: string,
    url: string,
    options?: { body?: unknown; headers?: Record<string, string>; key?: string | null },
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
};

async function keyedApp(
  database: DatabaseHandle,
  h: Harness,
  env: Record<string, string>,
  adminKey?: string,
): Promise<KeyedApp> {
  const deps = await createDependencies(
    loadConfig({
      LOG_LEVEL: 'silent',
      SCHED_OUTBOUND_ALLOW: '127.0.0.1/32',
      SCHED_CALENDAR_PROVIDERS: 'caldav,google',
      ...providerEnvironment('SCHED_GOOGLE', {
        apiUrl: h.google.apiUrl,
        authUrl: h.google.authUrl,
        tokenUrl: h.google.tokenUrl,
        revokeUrl: h.google.revokeUrl,
        clientId: h.google.clientId,
        clientSecret: h.google.clientSecret,
      }),
      ...env,
    }),
    { database, clock: () => NOW, processMetrics: false },
  );
  const app = await deps.buildApp();
  return {
    deps,
    app,
    request: (method, url, options = {}) => {
      const key = options.key === undefined ? adminKey : options.key;
      return app.inject({
        method: method as 'GET',
        url,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...options.headers },
        ...(options.body !== undefined ? { payload: options.body as object } : {}),
      });
    },
    close: async () => {
      await app.close();
      await deps.close();
    },
  };
}

/** What was sealed under version 1, and what each value must still open to. */
type Sealed = {
  adminKey: string;
  resourceId: string;
  apiKeyReply: { idempotencyKey: string; body: string };
  webhook: { id: string; secret: string; previousSecret: string; token: string };
  caldavConnectionId: string;
  oauth: { connectionId: string; authorizationUrl: string };
};

async function ok(response: Promise<LightMyRequestResponse>, status = 201): Promise<any> {
  const answered = await response;
  expect(answered.statusCode, answered.body).toBe(status);
  return answered.json();
}

/** One value in every sealed column: an idempotent reply, a webhook (secret rotated, token URL), CalDAV, OAuth. */
async function populate(database: DatabaseHandle, h: Harness, label: string): Promise<Sealed> {
  const { key: adminKey } = await createBootstrapKey(database.db, { organization: label, scopes: ['admin'] });
  const app = await keyedApp(database, h, { SCHED_ENCRYPTION_KEY: OLD_ONLY }, adminKey);
  try {
    const idempotencyKey = `rotate-${label}`;
    const reply = await app.request('POST', '/api-keys', {
      body: { name: 'ci', scopes: ['read'] },
      headers: { 'idempotency-key': idempotencyKey },
    });
    expect(reply.statusCode).toBe(201);
    const token = `hookTok${randomBytes(6).toString('hex')}`;
    const webhook = await ok(
      app.request('POST', '/webhooks', {
        body: { url: h.receiver.url(`/hook?token=${token}`), events: ['booking.created'] },
      }),
    );
    const rotated = await ok(app.request('POST', `/webhooks/${webhook.webhook_id}/rotate-secret`), 200);
    const resource = await ok(
      app.request('POST', '/resources', { body: { name: `Room ${label}`, kind: 'room', time_zone: 'UTC' } }),
    );
    await ok(
      app.request('PUT', `/resources/${resource.resource_id}/schedule`, {
        body: { weekly: roundTheClockWeekly() },
      }),
      200,
    );
    const caldav = await ok(
      app.request('POST', '/calendars/caldav/connect', {
        body: {
          resource_id: resource.resource_id,
          url: await h.caldav.newCalendar(`rotate-${label}`),
          username: h.caldav.username,
          password: h.caldav.password,
          sync: { frequency_minutes: 0 },
        },
      }),
    );
    const calendar = await h.google.control.createCalendar({ summary: `Rotate ${label}` });
    const oauth = await ok(
      app.request('POST', '/calendars/google/connect', {
        body: { resource_id: resource.resource_id, calendar_id: calendar.id, sync: { frequency_minutes: 0 } },
      }),
      200,
    );
    return {
      adminKey,
      resourceId: resource.resource_id,
      apiKeyReply: { idempotencyKey, body: reply.body },
      webhook: { id: webhook.webhook_id, secret: rotated.secret, previousSecret: webhook.secret, token },
      caldavConnectionId: caldav.connection_id,
      oauth: { connectionId: oauth.connection_id, authorizationUrl: oauth.authorization_url },
    };
  } finally {
    await app.close();
  }
}

/** Every sealed value in the database, by column. */
async function sealedValues(database: DatabaseHandle): Promise<{ column: string; value: string }[]> {
  const values: { column: string; value: string }[] = [];
  for (const column of SEALED_COLUMNS) {
    const { rows } = await sql<{ value: string }>`
      select ${sql.ref(column.column)} as value from ${sql.table(column.table)}
      where ${sql.ref(column.column)} is not null`.execute(database.db);
    for (const row of rows) values.push({ column: `${column.table}.${column.column}`, value: row.value });
  }
  return values;
}

/** The key versions the sealed values are under, per column. */
async function versionsByColumn(database: DatabaseHandle): Promise<Record<string, number[]>> {
  const byColumn: Record<string, number[]> = {};
  for (const { column, value } of await sealedValues(database)) {
    (byColumn[column] ??= []).push(sealedKeyVersion(value) ?? 0);
  }
  for (const versions of Object.values(byColumn)) versions.sort();
  return byColumn;
}

/** Runs a CLI command function and returns what it printed on standard output. */
async function printed(command: () => Promise<number>): Promise<{ code: number; stdout: string }> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    return { code: await command(), stdout: lines.join('') };
  } finally {
    spy.mockRestore();
  }
}

/**
 * Everything sealed opens and works with this app's keys: the idempotent reply replays, a delivery
 * reaches the URL with its token signed by both secrets, CalDAV syncs with its password, and the OAuth
 * consent completes with its verifier.
 */
async function expectEverythingWorks(app: KeyedApp, h: Harness, sealed: Sealed): Promise<void> {
  const replay = await app.request('POST', '/api-keys', {
    body: { name: 'ci', scopes: ['read'] },
    headers: { 'idempotency-key': sealed.apiKeyReply.idempotencyKey },
  });
  expect(replay.statusCode).toBe(201);
  expect(replay.headers['idempotent-replayed']).toBe('true');
  expect(replay.body).toBe(sealed.apiKeyReply.body);

  const start = new Date(NOW + 86_400_000 + Math.floor(Math.random() * 1000) * 3_600_000);
  await ok(
    app.request('POST', '/bookings', {
      body: {
        resource_ids: [sealed.resourceId],
        start_time: start.toISOString(),
        end_time: new Date(start.getTime() + 1_800_000).toISOString(),
        title: 'After rotation',
      },
    }),
  );
  const before = h.receiver.received.length;
  const dispatcher = app.deps.webhookDispatcher({ timeoutMs: 2_000 });
  try {
    expect(await dispatcher.runOnce()).toBeGreaterThan(0);
  } finally {
    await dispatcher.stop();
  }
  const arrived = h.receiver.received.slice(before);
  expect(arrived.map((request) => request.path)).toEqual([`/hook?token=${sealed.webhook.token}`]);
  for (const secret of [sealed.webhook.secret, sealed.webhook.previousSecret]) {
    expect(() => new Webhook(secret).verify(arrived[0]!.body, arrived[0]!.headers)).not.toThrow();
  }

  await ok(app.request('POST', `/calendars/caldav/${sealed.caldavConnectionId}/sync`), 200);
  const caldav = await ok(app.request('GET', `/calendars/caldav/${sealed.caldavConnectionId}`), 200);
  expect(caldav.status).toBe('active');
  expect(caldav.last_error ?? null).toBeNull();

  const approval = await fetch(sealed.oauth.authorizationUrl, { redirect: 'manual' });
  const location = new URL(approval.headers.get('location')!);
  const callback = await app.request('GET', `${location.pathname}${location.search}`, { key: null });
  expect(callback.statusCode, callback.body).toBe(200);
  const google = await ok(app.request('GET', `/calendars/google/${sealed.oauth.connectionId}`), 200);
  expect(google.status).toBe('active');
}

describe.skipIf(caldavSkip)(`sched keys rotate${caldavSkip ? ` — SKIPPED: ${caldavSkip}` : ''}`, () => {
  let h: Harness;
  beforeAll(async () => {
    h = {
      caldav: await startCalDavServer('radicale'),
      google: await startGoogleEmulator(),
      receiver: await new WebhookReceiver().start(),
    };
  }, 120_000);
  afterAll(async () => {
    await h?.caldav.stop();
    await h?.google.stop();
    await h?.receiver.stop();
  });

  it('lists every sealed column of the schema', async () => {
    const database = await pglite.open();
    try {
      const { rows } = await sql<{ table_name: string; column_name: string }>`
        select table_name, column_name from information_schema.columns
        where table_schema = 'public' and column_name like '%\\_sealed'`.execute(database.db);
      const inSchema = rows.map((row) => `${row.table_name}.${row.column_name}`).sort();
      const listed = SEALED_COLUMNS.map((c) => `${c.table}.${c.column}`).filter((c) => c.endsWith('_sealed'));
      expect(inSchema).toEqual([...listed].sort());
    } finally {
      await database.close();
    }
  });

  it.skipIf(postgresSkip)(
    `on a shared PostgreSQL: the new key deployed beside the old, rotate re-seals every value under it; the new key alone then opens all and the old alone none${postgresSkip ? ` — SKIPPED: ${postgresSkip}` : ''}`,
    async () => {
      const clone = await cloneTemplateDatabase('rotate');
      const database = await openDatabase({ kind: 'postgres', url: clone.url, poolSize: 4 });
      const apps: KeyedApp[] = [];
      try {
        const sealed = await populate(database, h, 'pg');
        const before = await versionsByColumn(database);
        expect(Object.keys(before).sort()).toEqual(
          SEALED_COLUMNS.map((c) => `${c.table}.${c.column}`).sort(),
        );
        for (const versions of Object.values(before)) expect(new Set(versions)).toEqual(new Set([1]));

        // Every process gets the new key, current; one of them keeps serving through the rotation.
        const serving = await keyedApp(database, h, { SCHED_ENCRYPTION_KEY: BOTH }, sealed.adminKey);
        apps.push(serving);
        const config = loadConfig({
          DATABASE_URL: clone.url,
          SCHED_ENCRYPTION_KEY: BOTH,
          LOG_LEVEL: 'silent',
        });
        const status = await printed(() => keysStatusCommand(config, { check: true }));
        expect(status.code).toBe(1);
        expect(status.stdout).toMatch(/^\s+webhook_endpoints\.secret_sealed\s+1\s+0$/m);
        expect(status.stdout).toContain('not under the current key version 2 yet');

        const rotation = await printed(() =>
          keysRotateCommand(config, {
            resealOnly: false,
            retire: false,
            batchSize: 1,
            // A request served during the rotation, by a process holding both keys.
            beforeWrite: async (column) => {
              if (column === 'idempotency_keys.response_body') {
                expect((await serving.request('GET', `/webhooks/${sealed.webhook.id}`)).statusCode).toBe(200);
              }
            },
          }),
        );
        expect(rotation.code, rotation.stdout).toBe(0);
        for (const column of SEALED_COLUMNS) {
          expect(rotation.stdout).toMatch(
            new RegExp(`^\\s+${column.table}\\.${column.column}\\s+[1-9]`, 'm'),
          );
        }
        expect(rotation.stdout).toContain('version 1 can be removed');
        for (const versions of Object.values(await versionsByColumn(database))) {
          expect(new Set(versions)).toEqual(new Set([2]));
        }
        expect((await printed(() => keysStatusCommand(config, { check: true }))).code).toBe(0);

        // Only the old key: nothing sealed opens, and the stored reply is not replayed.
        const oldOnly = await keyedApp(database, h, { SCHED_ENCRYPTION_KEY: OLD_ONLY }, sealed.adminKey);
        apps.push(oldOnly);
        for (const { value } of await sealedValues(database)) {
          expect(() => oldOnly.deps.secretBox.open(value)).toThrow(UnknownKeyVersionError);
        }

        // Only the new key, under its version: everything works.
        const newOnly = await keyedApp(database, h, { SCHED_ENCRYPTION_KEY: NEW_ONLY }, sealed.adminKey);
        apps.push(newOnly);
        await expectEverythingWorks(newOnly, h, sealed);

        const notReplayed = await oldOnly.request('POST', '/api-keys', {
          body: { name: 'ci', scopes: ['read'] },
          headers: { 'idempotency-key': sealed.apiKeyReply.idempotencyKey },
        });
        expect(notReplayed.headers['idempotent-replayed']).toBeUndefined();
      } finally {
        for (const app of apps) await app.close();
        await database.close();
        await clone.drop();
      }
    },
    180_000,
  );

  it('keeps a write made during the rotation: the row is compared with what was read, and read again', async () => {
    const database = await pglite.open();
    const apps: KeyedApp[] = [];
    try {
      const sealed = await populate(database, h, 'cas');
      // A process that has not got the new key yet serves on and seals under version 1.
      const lagging = await keyedApp(database, h, { SCHED_ENCRYPTION_KEY: OLD_ONLY }, sealed.adminKey);
      apps.push(lagging);
      const parsed = parseKeyMaterial(BOTH);
      if ('error' in parsed) throw new Error(parsed.error);
      const box = new SecretBox(parsed.keyring);
      let rotatedMeanwhile: string | undefined;
      const reports = await resealAll(database.db, box, {
        beforeWrite: async (column) => {
          if (column !== 'webhook_endpoints.secret_sealed' || rotatedMeanwhile) return;
          const rotated = await ok(
            lagging.request('POST', `/webhooks/${sealed.webhook.id}/rotate-secret`),
            200,
          );
          rotatedMeanwhile = rotated.secret as string;
        },
      });
      expect(rotatedMeanwhile).toBeDefined();
      const secrets = reports.find((report) => report.column === 'webhook_endpoints.secret_sealed')!;
      expect(secrets.changedMeanwhile).toBe(1);
      expect(secrets.resealed).toBe(1);
      const row = await database.db
        .selectFrom('webhook_endpoints')
        .select(['secret_sealed', 'previous_secret_sealed'])
        .where('webhook_id', '=', sealed.webhook.id)
        .executeTakeFirstOrThrow();
      // The secret the API handed out meanwhile is the one kept, re-sealed in the next pass.
      expect(sealedKeyVersion(row.secret_sealed)).toBe(2);
      expect(box.open(row.secret_sealed)).toBe(rotatedMeanwhile);
      expect(box.open(row.previous_secret_sealed!)).toBe(sealed.webhook.secret);
      const counts = await countSealedValues(database.db);
      expect(counts.every((count) => [...count.byVersion.keys()].every((version) => version === 2))).toBe(
        true,
      );
    } finally {
      for (const app of apps) await app.close();
      await database.close();
    }
  });

  it('on the embedded database, the sched process adds version 2 to encryption.key and re-seals; --retire drops version 1', async () => {
    const temp = makeTempDir('rotate-embedded');
    try {
      const dataDir = temp.dir;
      const config = {
        SCHED_DATA_DIR: dataDir,
        SCHED_ENCRYPTION_KEY: '',
        SCHED_OUTBOUND_ALLOW: '127.0.0.1/32',
      };
      const first = await createDependencies(loadConfig({ ...config, LOG_LEVEL: 'silent' }), {
        clock: () => NOW,
        processMetrics: false,
      });
      const { key: adminKey } = await createBootstrapKey(first.database.db, {
        organization: 'acme',
        scopes: ['admin'],
      });
      const app = await first.buildApp();
      const headers = { authorization: `Bearer ${adminKey}` };
      const token = `embTok${randomBytes(6).toString('hex')}`;
      const created = await app.inject({
        method: 'POST',
        url: '/webhooks',
        headers: { ...headers, 'idempotency-key': 'embedded-1' },
        payload: { url: h.receiver.url(`/hook?token=${token}`), events: ['booking.created'] },
      });
      expect(created.statusCode).toBe(201);
      await app.close();
      await first.close();
      const oldKey = fs.readFileSync(path.join(dataDir, 'encryption.key'), 'utf8').trim();

      const rotated = await runCli(['keys', 'rotate', '--batch-size', '1'], config, 90_000);
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(rotated.stdout).toContain(`Added key version 2 to ${path.join(dataDir, 'encryption.key')}`);
      expect(rotated.stdout).toMatch(/^\s+webhook_endpoints\.secret_sealed\s+1$/m);
      expect(rotated.stdout).toMatch(/^\s+webhook_endpoints\.url_sealed\s+1$/m);
      expect(rotated.stdout).toMatch(/^\s+idempotency_keys\.response_body\s+1$/m);
      const keyFile = fs.readFileSync(path.join(dataDir, 'encryption.key'), 'utf8');
      expect(keyFile).toContain(`1:${oldKey}`);
      expect(keyFile).toMatch(/^2:/m);
      expect(fs.statSync(path.join(dataDir, 'encryption.key')).mode & 0o777).toBe(0o600);

      const status = await runCli(['keys', 'status', '--check'], config, 90_000);
      expect(status.code, status.stdout + status.stderr).toBe(0);
      expect(status.stdout).toMatch(/^\s+webhook_endpoints\.secret_sealed\s+0\s+1$/m);

      const retired = await runCli(['keys', 'rotate', '--reseal-only', '--retire'], config, 90_000);
      expect(retired.code, retired.stderr).toBe(0);
      expect(retired.stdout).toContain('Removed key version 1');
      expect(fs.readFileSync(path.join(dataDir, 'encryption.key'), 'utf8')).not.toContain(oldKey);

      // The server on the same folder replays the stored reply and delivers to the URL with its token.
      const after = await createDependencies(loadConfig({ ...config, LOG_LEVEL: 'silent' }), {
        clock: () => NOW,
        processMetrics: false,
      });
      try {
        expect(after.secretBox.versions).toEqual([2]);
        const again = await after.buildApp();
        const replay = await again.inject({
          method: 'POST',
          url: '/webhooks',
          headers: { ...headers, 'idempotency-key': 'embedded-1' },
          payload: { url: h.receiver.url(`/hook?token=${token}`), events: ['booking.created'] },
        });
        expect(replay.headers['idempotent-replayed']).toBe('true');
        expect(replay.body).toBe(created.body);
        const row = await after.database.db
          .selectFrom('webhook_endpoints')
          .select('url_sealed')
          .executeTakeFirstOrThrow();
        expect(after.secretBox.open(row.url_sealed!)).toBe(h.receiver.url(`/hook?token=${token}`));
        await again.close();
      } finally {
        await after.close();
      }
    } finally {
      temp.remove();
    }
  }, 240_000);
});

describe('sched keys, as typed', () => {
  it('each subcommand has its own help, and wrong use exits 2 naming what is wrong, before opening anything', async () => {
    const temp = makeTempDir('keys-cli');
    try {
      const env = { SCHED_DATA_DIR: temp.dir };
      const rotate = await runCli(['keys', 'rotate', '--help'], env);
      expect(rotate.code).toBe(0);
      expect(rotate.stdout).toMatch(/^Usage: sched keys rotate/m);
      for (const flag of ['--reseal-only', '--retire', '--batch-size']) expect(rotate.stdout).toContain(flag);
      expect(rotate.stdout).toContain('SCHED_ENCRYPTION_KEY_FILE');
      const status = await runCli(['keys', 'status', '--help'], env);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/^Usage: sched keys status \[--check\]$/m);
      const general = await runCli(['--help'], env);
      expect(general.stdout).toMatch(/^\s+sched keys rotate\b/m);
      expect(general.stdout).toMatch(/^\s+sched keys status\b/m);

      for (const [args, said] of [
        [['keys', 'turn'], 'the keys command knows only "rotate" and "status"'],
        [['keys', 'rotate', '--batch-size', '0'], '--batch-size must be a whole number from 1 to 10000'],
        [['keys', 'status', '--retire'], '--retire is not an option of "sched keys status"'],
      ] as const) {
        const result = await runCli(args, env);
        expect(result.code, args.join(' ')).toBe(2);
        expect(result.stderr.split('\n')[0]).toContain(said);
      }
      expect(fs.readdirSync(temp.dir)).toEqual([]);

      // Keys given in the environment are the operator's to change: --retire says so and changes nothing.
      const retire = await runCli(['keys', 'rotate', '--retire'], { ...env, SCHED_ENCRYPTION_KEY: BOTH });
      expect(retire.code).toBe(1);
      expect(retire.stderr).toContain('the keys come from SCHED_ENCRYPTION_KEY');
      expect(fs.readdirSync(temp.dir)).toEqual([]);
    } finally {
      temp.remove();
    }
  }, 120_000);
});

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAndMigrate, openDatabase } from '../../src/storage/open-database.js';
import { startGoogleEmulator, type GoogleEmulator } from '../emulators/google/emulator.js';
import type { Backend } from '../support/backends.js';
import { calDavServerSkipReason, startCalDavServer, type CalDavServer } from '../support/caldav-servers.js';
import { storedCredentials } from '../support/credentials.js';
import { postgresUnavailableReason } from '../support/postgres.js';
import { createOpenResource } from '../support/resources.js';
import { cloneTemplateDatabase, makeTempDir } from '../support/spawn-server.js';
import { freePort, startTestApp, type TestApp } from '../support/test-app.js';
import { withUserinfo } from './userinfo.js';

const run = promisify(execFile);

/** A secret the API handed out or was given, by what it is. */
type Secret = { what: string; value: string };

/** An ICS feed whose address holds its secret, as private calendar URLs do. */
async function startIcsServer(token: string): Promise<{ url: string; stop(): Promise<void> }> {
  const server = http.createServer((request, response) => {
    if (request.url !== `/private/${token}/basic.ics`) return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'text/calendar' });
    response.end(
      [
        'BEGIN:VCALENDAR',
        'VERSION:2.0',
        'PRODID:-//Example//Feed//EN',
        'BEGIN:VEVENT',
        'UID:ics-1@example.com',
        'DTSTAMP:20260501T000000Z',
        'DTSTART:20260520T090000Z',
        'DTEND:20260520T100000Z',
        'SUMMARY:Busy',
        'END:VEVENT',
        'END:VCALENDAR',
        '',
      ].join('\r\n'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/private/${token}/basic.ics`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type Harness = { caldav: CalDavServer; google: GoogleEmulator; icsToken: string; icsUrl: string };

/** Every route that hands out or takes in a secret, with an Idempotency-Key where it is a POST. */
async function exerciseSecretRoutes(t: TestApp, h: Harness, label: string): Promise<Secret[]> {
  const secrets: Secret[] = [{ what: 'the bootstrap admin key', value: t.adminKey }];
  const post = async (url: string, body: unknown, idempotencyKey?: string) => {
    const response = await t.request('POST', url, {
      ...(body === undefined ? {} : { body }),
      ...(idempotencyKey ? { headers: { 'idempotency-key': idempotencyKey } } : {}),
    });
    expect(response.statusCode, `${url}: ${response.body}`).toBeLessThan(300);
    return response.json();
  };

  const apiKey = await post('/api-keys', { name: 'ci', scopes: ['read'] }, 'idem-api-key');
  secrets.push({ what: 'a new API key', value: apiKey.key });

  // A receiver's URL may carry its token in the query; a later PATCH gives it another.
  const hookToken = `hookTok${Math.random().toString(36).slice(2, 12)}`;
  const webhook = await post(
    '/webhooks',
    { url: `http://127.0.0.1:9/hook?token=${hookToken}`, events: ['booking.created'] },
    'idem-webhook',
  );
  secrets.push({ what: 'a webhook secret', value: webhook.secret });
  secrets.push({ what: 'the webhook URL token', value: hookToken });
  const patchedToken = `hookTok${Math.random().toString(36).slice(2, 12)}`;
  const patched = await t.request('PATCH', `/webhooks/${webhook.webhook_id}`, {
    body: { url: `http://127.0.0.1:9/hook?token=${patchedToken}` },
  });
  expect(patched.statusCode, patched.body).toBe(200);
  secrets.push({ what: 'the webhook URL token set by PATCH', value: patchedToken });
  const rotated = await post(`/webhooks/${webhook.webhook_id}/rotate-secret`, undefined, 'idem-rotate');
  secrets.push({ what: 'a rotated webhook secret', value: rotated.secret });

  const resourceId = await createOpenResource(t, { name: 'Ada', kind: 'person', time_zone: 'UTC' });
  const feed = await post(`/resources/${resourceId}/feeds`, undefined, 'idem-feed');
  const feedSecret = /\/feeds\/([^/]+)\.ics$/.exec(feed.url)?.[1];
  expect(feedSecret).toBeTruthy();
  secrets.push({ what: 'a feed secret', value: feedSecret! });

  const caldavResource = async (name: string) =>
    createOpenResource(t, { name, kind: 'room', time_zone: 'UTC' });
  await post('/calendars/caldav/connect', {
    resource_id: await caldavResource('CalDAV fields'),
    url: await h.caldav.newCalendar(`${label}-fields`),
    username: h.caldav.username,
    password: h.caldav.password,
  });
  await post('/calendars/caldav/connect', {
    resource_id: await caldavResource('CalDAV userinfo'),
    url: withUserinfo(await h.caldav.newCalendar(`${label}-userinfo`), h.caldav.username, h.caldav.password),
  });
  secrets.push({ what: 'the CalDAV password', value: h.caldav.password });
  secrets.push({ what: 'the CalDAV password, URL-encoded', value: encodeURIComponent(h.caldav.password) });

  await post('/calendars/ics/connect', { resource_id: await caldavResource('ICS'), url: h.icsUrl });
  secrets.push({ what: 'the ICS feed token', value: h.icsToken });

  const calendar = await h.google.control.createCalendar({ summary: 'At rest' });
  const started = await post('/calendars/google/connect', {
    resource_id: await caldavResource('Google'),
    calendar_id: calendar.id,
    sync: { frequency_minutes: 0, realtime: true },
  });
  secrets.push({ what: 'the OAuth state', value: started.state });
  // The user's trip to Google and back, by hand, to keep the code the callback is given.
  const approval = await fetch(started.authorization_url, { redirect: 'manual' });
  const location = new URL(approval.headers.get('location')!);
  const code = location.searchParams.get('code');
  expect(code).toBeTruthy();
  secrets.push({ what: 'the authorization code', value: code! });
  const callback = await t.request('GET', `${location.pathname}${location.search}`, { key: null });
  expect(callback.statusCode, callback.body).toBe(200);
  const credentials = await storedCredentials(t, started.connection_id);
  secrets.push({ what: 'the access token', value: credentials.access_token });
  secrets.push({ what: 'the refresh token', value: credentials.refresh_token ?? '' });
  expect((await t.request('POST', `/calendars/google/${started.connection_id}/sync`)).statusCode).toBe(200);
  const channel = (await h.google.control.channels()).find((c) => c.calendarId === calendar.id);
  expect(channel?.token).toBeTruthy();
  secrets.push({ what: 'the push channel token', value: channel!.token! });

  for (const secret of secrets) expect(secret.value.length, secret.what).toBeGreaterThan(6);
  return secrets;
}

function found(haystack: Buffer, secrets: readonly Secret[]): string[] {
  return secrets
    .filter((secret) => haystack.indexOf(Buffer.from(secret.value, 'utf8')) >= 0)
    .map((s) => s.what);
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

async function pgDumpBinary(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort().reverse() : [];
  for (const version of versions) {
    const candidate = path.join(root, version, 'bin', 'pg_dump');
    if (fs.existsSync(candidate)) return candidate;
  }
  return 'pg_dump';
}

const caldavSkip = calDavServerSkipReason('radicale');
const postgresSkip = await postgresUnavailableReason();

describe.skipIf(caldavSkip)(
  `no secret in plaintext at rest${caldavSkip ? ` — SKIPPED: ${caldavSkip}` : ''}`,
  () => {
    let harness: Harness;
    let ics: Awaited<ReturnType<typeof startIcsServer>>;

    beforeAll(async () => {
      const icsToken = `icsTok${Math.random().toString(36).slice(2, 12)}`;
      ics = await startIcsServer(icsToken);
      harness = {
        caldav: await startCalDavServer('radicale'),
        google: await startGoogleEmulator(),
        icsToken,
        icsUrl: ics.url,
      };
    }, 120_000);
    afterAll(async () => {
      await harness?.caldav.stop();
      await harness?.google.stop();
      await ics?.stop();
    });

    const appOn = async (backend: Backend) =>
      startTestApp(backend, '2026-05-18T06:00:00Z', {
        google: {
          apiUrl: harness.google.apiUrl,
          authUrl: harness.google.authUrl,
          tokenUrl: harness.google.tokenUrl,
          revokeUrl: harness.google.revokeUrl,
          clientId: harness.google.clientId,
          clientSecret: harness.google.clientSecret,
        },
        listenPort: await freePort(),
      });

    it.skipIf(postgresSkip)(
      `pg_dump of PostgreSQL holds none of them${postgresSkip ? ` — SKIPPED: ${postgresSkip}` : ''}`,
      async () => {
        const clone = await cloneTemplateDatabase('atrest');
        let t: TestApp | undefined;
        try {
          t = await appOn({
            name: 'postgres',
            skipReason: undefined,
            open: () => openDatabase({ kind: 'postgres', url: clone.url, poolSize: 5 }),
          });
          const secrets = await exerciseSecretRoutes(t, harness, 'postgres');
          await t.close();
          t = undefined;
          const dump = await run(await pgDumpBinary(), ['--data-only', '--dbname', clone.url], {
            maxBuffer: 256 * 1024 * 1024,
            encoding: 'buffer',
          });
          const text = dump.stdout as Buffer;
          expect(text.indexOf(Buffer.from('idempotency_keys'))).toBeGreaterThan(-1);
          expect(found(text, secrets)).toEqual([]);
        } finally {
          await t?.close();
          await clone.drop();
        }
      },
      240_000,
    );

    it('the embedded database files hold none of them', async () => {
      const dataDir = makeTempDir('atrest');
      try {
        const t = await appOn({
          name: 'pglite',
          skipReason: undefined,
          open: () => openAndMigrate({ kind: 'embedded', dataDir: dataDir.dir }),
        });
        let secrets: Secret[];
        try {
          secrets = await exerciseSecretRoutes(t, harness, 'embedded');
        } finally {
          await t.close();
        }
        const files = filesUnder(dataDir.dir);
        expect(files.length).toBeGreaterThan(0);
        const hits = files.flatMap((file) =>
          found(fs.readFileSync(file), secrets).map((what) => `${what} in ${file}`),
        );
        expect(hits).toEqual([]);
      } finally {
        dataDir.remove();
      }
    }, 240_000);
  },
);

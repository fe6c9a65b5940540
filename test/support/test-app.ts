import net from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config.js';
import { providerEnvironment } from '../emulators/environment.js';
import { createDependencies, type Dependencies } from '../../src/dependencies.js';
import type { App } from '../../src/http/build-app.js';
import type { WebhookDispatcher, WebhookDispatcherOptions } from '../../src/jobs/webhook-dispatcher.js';
import type { OutboundGuard } from '../../src/integrations/http/outbound-guard.js';
import type { GuardedHttp } from '../../src/integrations/http/guarded-http.js';
import type { OAuthProviderSettings } from '../../src/calendar/providers/connectors.js';
import type { CalendarDeps } from '../../src/calendar/store/connections.js';
import { SecretBox } from '../../src/security/secret-box.js';
import { createBootstrapKey } from '../../src/services/api-keys.js';
import type { DatabaseHandle } from '../../src/storage/open-database.js';
import type { Backend } from './backends.js';

export type TestClock = { now: number; set(iso: string): void; advance(ms: number): void };

export function testClock(iso: string): TestClock {
  const clock: TestClock = {
    now: Date.parse(iso),
    set(value) {
      clock.now = Date.parse(value);
    },
    advance(ms) {
      clock.now += ms;
    },
  };
  return clock;
}

export type RequestOptions = {
  key?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string>;
};

export type TestApp = {
  app: App;
  /** Everything the app was built from, by the production dependency builder. */
  deps: Dependencies;
  database: DatabaseHandle;
  clock: TestClock;
  /** An admin key of the organization "acme". */
  adminKey: string;
  organizationId: string;
  keyFor(organization: string, scopes: ('read' | 'write' | 'admin')[]): Promise<string>;
  secretBox: SecretBox;
  /** As the tests' servers run: SCHED_OUTBOUND_ALLOW=127.0.0.1/32. */
  guard: OutboundGuard;
  /** Outbound HTTP through `guard`, as the server's providers use it. */
  http: GuardedHttp;
  /** What the calendar services and the sync worker run with, on this app's database and clock. */
  calendarDeps: CalendarDeps;
  /** Where the app listens when started with listenPort. */
  publicUrl: string | undefined;
  /** A webhook dispatcher on this app's database and clock; the caller stops it. */
  dispatcher(options?: Partial<WebhookDispatcherOptions>): WebhookDispatcher;
  request(method: string, url: string, options?: RequestOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
};

export type TestAppOptions = {
  /** Where the OAuth providers are (emulators); left out, Google and Outlook are not configured. */
  google?: OAuthProviderSettings;
  outlook?: OAuthProviderSettings;
  /** Per provider request; short in fault tests. */
  providerTimeoutMs?: number;
  /** Listen on this loopback port, so providers can call back (SCHED_PUBLIC_URL is then set). */
  listenPort?: number;
  /** More environment, as an operator would set it (read by loadConfig like the server's). */
  env?: Record<string, string>;
};

/** The environment a test server runs with, as `sched serve` would read it. */
function testEnvironment(options: TestAppOptions, publicUrl: string | undefined): Record<string, string> {
  const env: Record<string, string> = {
    LOG_LEVEL: 'silent',
    SCHED_OUTBOUND_ALLOW: '127.0.0.1/32',
    SCHED_CALENDAR_PROVIDERS: [
      'caldav',
      'ics',
      ...(options.google ? ['google'] : []),
      ...(options.outlook ? ['outlook'] : []),
    ].join(','),
    ...(publicUrl ? { SCHED_PUBLIC_URL: publicUrl } : {}),
  };
  if (options.google) Object.assign(env, providerEnvironment('SCHED_GOOGLE', options.google));
  if (options.outlook) Object.assign(env, providerEnvironment('SCHED_OUTLOOK', options.outlook));
  return { ...env, ...options.env };
}

/**
 * The app as `sched serve` builds it (createDependencies), on a per-file database clone and a clock the
 * test moves. Background work is not started: a test starts the workers it wants through `deps`.
 */
export async function startTestApp(
  backend: Backend,
  now = '2026-05-18T06:00:00Z',
  options: TestAppOptions = {},
): Promise<TestApp> {
  const database = await backend.open();
  const clock = testClock(now);
  const publicUrl = options.listenPort === undefined ? undefined : `http://127.0.0.1:${options.listenPort}`;
  const config = loadConfig(testEnvironment(options, publicUrl));
  const deps = await createDependencies(config, {
    database,
    clock: () => clock.now,
    secretBox: new SecretBox(randomBytes(32)),
    processMetrics: false,
    ...(options.providerTimeoutMs ? { providerTimeoutMs: options.providerTimeoutMs } : {}),
  });
  const app = await deps.buildApp();
  if (options.listenPort !== undefined) await app.listen({ host: '127.0.0.1', port: options.listenPort });
  const admin = await createBootstrapKey(database.db, { organization: 'acme', scopes: ['admin'] });
  const testApp: TestApp = {
    app,
    deps,
    database,
    clock,
    adminKey: admin.key,
    organizationId: admin.organizationId,
    secretBox: deps.secretBox,
    guard: deps.guard,
    http: deps.http,
    publicUrl,
    calendarDeps: deps.calendar,
    dispatcher: (options = {}) => deps.webhookDispatcher(options),
    keyFor: async (organization, scopes) =>
      (await createBootstrapKey(database.db, { organization, scopes })).key,
    request: (method, url, options = {}) => {
      const key = options.key === undefined ? admin.key : options.key;
      const headers: Record<string, string> = { ...(key ? { authorization: `Bearer ${key}` } : {}) };
      // A string body is sent as-is (malformed JSON, oversized bodies); anything else as JSON.
      if (typeof options.body === 'string') headers['content-type'] = 'application/json';
      return app.inject({
        method: method as 'GET',
        url,
        headers: { ...headers, ...options.headers },
        ...(options.query ? { query: options.query } : {}),
        ...(options.body !== undefined ? { payload: options.body as string | object } : {}),
      });
    },
    close: async () => {
      await app.close();
      await deps.close();
      await database.close();
    },
  };
  return testApp;
}

/** A loopback port free right now, for a server that must know its own URL before it listens. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

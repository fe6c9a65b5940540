import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import type { Config } from './config.js';
import { type App, buildApp } from './http/build-app.js';
import { logSerializers } from './http/log-serializers.js';
import { createMetrics, type Metrics } from './http/metrics.js';
import { CalendarSyncWorker, type CalendarSyncWorkerOptions } from './calendar/index.js';
import {
  WEBHOOK_DELIVERIES_CHANNEL,
  WebhookDispatcher,
  type WebhookDispatcherOptions,
} from './jobs/webhook-dispatcher.js';
import { GuardedHttp } from './integrations/index.js';
import { OutboundGuard } from './integrations/index.js';
import { createConnectors, createParserPool } from './calendar/index.js';
import { resolveEncryptionKey } from './security/keys.js';
import { SecretBox } from './security/secret-box.js';
import { sealPlaintextWebhookUrls } from './services/webhooks.js';
import { createBootstrapKey } from './services/api-keys.js';
import type { CalendarDeps, Connectors } from './calendar/index.js';
import { pushUnavailableReason } from './calendar/index.js';
import type { Clock } from './services/context.js';
import { type DatabaseHandle, openAndMigrate, type OpenDatabaseOptions } from './storage/open-database.js';

export const systemClock: Clock = () => Date.now();

export function databaseOptions(config: Config): OpenDatabaseOptions {
  return config.databaseUrl
    ? { kind: 'postgres', url: config.databaseUrl, poolSize: config.databasePoolSize }
    : { kind: 'embedded', dataDir: config.dataDir };
}

/**
 * What a test or a benchmark may put in place of the production choice. Everything else — the
 * guard, the providers, the calendar services, the workers, the HTTP app — is built here exactly as
 * `sched serve` and `sched worker` build it.
 */
export type DependencyOverrides = {
  /** A clock the test controls; left out, the system clock. */
  clock?: Clock;
  /** An open, migrated database (a test's clone); left out, the configured one is opened and migrated. */
  database?: DatabaseHandle;
  /** Left out, the keys from SCHED_ENCRYPTION_KEY, SCHED_ENCRYPTION_KEY_FILE or the embedded data folder. */
  secretBox?: SecretBox;
  /** Per provider request; left out, GuardedHttp's 15 s. Fault tests shorten it. */
  providerTimeoutMs?: number;
  /** Process metrics (CPU, memory, event loop) in /metrics; on unless turned off. */
  processMetrics?: boolean;
  /** Wraps the built connectors, e.g. so a benchmark can time each provider call; behaviour stays theirs. */
  instrumentConnectors?: (connectors: Connectors) => Connectors;
  /** Where log lines go; left out, standard output. `sched mcp` keeps standard output for the protocol. */
  logTo?: 'stdout' | 'stderr';
};

export type Background = { stop(): Promise<void> };

export type Dependencies = {
  config: Config;
  clock: Clock;
  logger: FastifyBaseLogger;
  database: DatabaseHandle;
  secretBox: SecretBox;
  guard: OutboundGuard;
  http: GuardedHttp;
  metrics: Metrics;
  /** What every calendar service, the sync worker and the provider hooks run with. */
  calendar: CalendarDeps;
  /** Warnings about the configuration that do not stop the start (said once, at start). */
  warnings: string[];
  buildApp(): Promise<App>;
  webhookDispatcher(options?: Partial<WebhookDispatcherOptions>): WebhookDispatcher;
  calendarSyncWorker(
    options?: Partial<Omit<CalendarSyncWorkerOptions, 'database' | 'deps'>>,
  ): CalendarSyncWorker;
  /** The webhook dispatcher and the calendar sync worker, as every serve and worker process runs them. */
  startBackground(options?: {
    calendar?: Partial<Omit<CalendarSyncWorkerOptions, 'database' | 'deps'>>;
  }): Promise<Background>;
  /** The first admin key of an empty installation, made now; undefined where any key exists. */
  ensureFirstApiKey(): Promise<string | undefined>;
  /** Closes outbound connections and, when it opened it, the database. */
  close(): Promise<void>;
};

function configWarnings(config: Config): string[] {
  return config.calendarProviders.flatMap(
    (provider) => pushUnavailableReason(provider, config.publicUrl) ?? [],
  );
}

/**
 * The one dependency builder: `sched serve`, `sched worker`, the tests and the benchmarks all build
 * their app and workers here. Checks what needs no database first, so a bad setting fails fast and
 * leaves nothing open.
 */
export async function createDependencies(
  config: Config,
  overrides: DependencyOverrides = {},
): Promise<Dependencies> {
  const logOptions = { level: config.logLevel, serializers: logSerializers };
  const logger = (
    overrides.logTo === 'stderr' ? pino(logOptions, pino.destination(2)) : pino(logOptions)
  ) as FastifyBaseLogger;
  const clock = overrides.clock ?? systemClock;
  const keys = overrides.secretBox
    ? undefined
    : resolveEncryptionKey({
        configured: config.encryptionKey,
        ...(config.databaseUrl ? {} : { embeddedDataDir: config.dataDir }),
      });
  const secretBox = overrides.secretBox ?? new SecretBox(keys!.keyring);
  const guard = new OutboundGuard({ allow: config.outboundAllow });
  const database = overrides.database ?? (await openAndMigrate(databaseOptions(config)));
  const ownsDatabase = overrides.database === undefined;
  try {
    await sealPlaintextWebhookUrls(database.db, secretBox);
  } catch (error) {
    if (ownsDatabase) await database.close();
    throw error;
  }
  const http = new GuardedHttp(guard);
  // Calendars are parsed and expanded on worker threads, so the API answers during any sync.
  const parser = createParserPool();
  const every = createConnectors(http, {
    ...(overrides.providerTimeoutMs ? { timeoutMs: overrides.providerTimeoutMs } : {}),
    parser,
    google: config.google,
    outlook: config.outlook,
  });
  // Only the providers this server offers (SCHED_CALENDAR_PROVIDERS); the others are "not configured".
  const built: Connectors = {};
  for (const provider of config.calendarProviders) built[provider] = every[provider];
  const connectors = overrides.instrumentConnectors?.(built) ?? built;
  const metrics = createMetrics({ processMetrics: overrides.processMetrics ?? true });
  const calendar: CalendarDeps = {
    db: database.db,
    clock,
    secretBox,
    connectors,
    parser,
    databaseKind: database.kind,
    publicUrl: config.publicUrl,
  };

  const deps: Dependencies = {
    config,
    clock,
    logger,
    database,
    secretBox,
    guard,
    http,
    metrics,
    calendar,
    warnings: [...configWarnings(config), ...(keys?.warnings ?? [])],
    buildApp: () =>
      buildApp({
        db: database.db,
        databaseKind: database.kind,
        listen: (channel, onNotify) => database.listen(channel, onNotify),
        clock,
        secretBox,
        outboundGuard: guard,
        logger,
        metrics,
        connectors,
        parser,
        publicUrl: config.publicUrl,
        publicRateLimit: config.publicRateLimit,
        trustProxy: config.trustProxy,
      }),
    webhookDispatcher: (options = {}) =>
      new WebhookDispatcher({
        db: database.db,
        clock,
        secretBox,
        guard,
        logger,
        leaseMs: config.webhookLeaseSeconds * 1000,
        onOutcome: (outcome) => metrics.webhookDeliveries.inc({ outcome }),
        ...options,
      }),
    calendarSyncWorker: (options = {}) =>
      new CalendarSyncWorker({
        database,
        deps: calendar,
        logger,
        onOutcome: ({ provider, outcome }) => metrics.calendarSyncs.inc({ provider, outcome }),
        ...options,
      }),
    startBackground: async (options = {}) => {
      const dispatcher = deps.webhookDispatcher();
      // Set up before the API serves anything: PGlite's LISTEN must not land inside a request's transaction.
      const unlisten = await database.listen(WEBHOOK_DELIVERIES_CHANNEL, () => dispatcher.wake());
      dispatcher.start();
      const calendarSync = deps.calendarSyncWorker(options.calendar);
      try {
        await calendarSync.start();
      } catch (error) {
        await unlisten();
        await dispatcher.stop();
        throw error;
      }
      return {
        stop: async () => {
          await unlisten();
          await dispatcher.stop();
          await calendarSync.stop();
        },
      };
    },
    ensureFirstApiKey: async () => {
      if (config.bootstrapApiKey) {
        await createBootstrapKey(database.db, {
          organization: 'default',
          scopes: ['admin'],
          key: config.bootstrapApiKey,
        });
        return undefined;
      }
      const anyKey = await database.db
        .selectFrom('api_keys')
        .select('api_key_id')
        .limit(1)
        .executeTakeFirst();
      if (anyKey) return undefined;
      const created = await createBootstrapKey(database.db, {
        organization: 'default',
        scopes: ['admin'],
        name: 'first admin key',
      });
      return created.key;
    },
    close: async () => {
      try {
        await http.close();
      } finally {
        try {
          await parser.close();
        } finally {
          if (ownsDatabase) await database.close();
        }
      }
    },
  };
  return deps;
}

export type Server = {
  app: App;
  dependencies: Dependencies;
  /** Listens, then makes the first key of an empty installation, so a failed start never loses it. */
  listen(): Promise<{ address: string; firstApiKey: string | undefined }>;
  close(): Promise<void>;
};

/** `sched serve`: the HTTP API with the background work beside it. */
export async function composeServer(config: Config, overrides: DependencyOverrides = {}): Promise<Server> {
  const dependencies = await createDependencies(config, overrides);
  let app: App | undefined;
  let background: Background | undefined;
  const close = async () => {
    try {
      await app?.close();
      await background?.stop();
    } finally {
      await dependencies.close();
    }
  };
  try {
    app = await dependencies.buildApp();
    background = await dependencies.startBackground();
  } catch (error) {
    await close();
    throw error;
  }
  const built = app;
  return {
    app: built,
    dependencies,
    listen: async () => {
      const address = await built.listen({ port: config.port, host: config.host });
      return { address, firstApiKey: await dependencies.ensureFirstApiKey() };
    },
    close,
  };
}

/** `sched worker`: background work only, for running more of it beside the API processes. */
export async function composeWorker(
  config: Config,
  overrides: DependencyOverrides = {},
): Promise<{ dependencies: Dependencies; close(): Promise<void> }> {
  const dependencies = await createDependencies(config, overrides);
  let background: Background;
  try {
    background = await dependencies.startBackground();
  } catch (error) {
    await dependencies.close();
    throw error;
  }
  return {
    dependencies,
    close: async () => {
      try {
        await background.stop();
      } finally {
        await dependencies.close();
      }
    },
  };
}

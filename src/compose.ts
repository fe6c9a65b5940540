import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import type { Config } from './config.js';
import { type App, buildApp } from './http/build-app.js';
import { createMetrics, type Metrics } from './http/metrics.js';
import { logSerializers } from './http/log-serializers.js';
import { WEBHOOK_DELIVERIES_CHANNEL, WebhookDispatcher } from './jobs/webhook-dispatcher.js';
import { OutboundGuard } from './net/outbound-guard.js';
import { CalendarSyncWorker } from './jobs/calendar-sync-worker.js';
import { GuardedHttp } from './net/guarded-http.js';
import { createConnectors } from './providers/connectors.js';
import type { Connectors } from './services/calendar-connections.js';
import { resolveEncryptionKey, SecretBox } from './security/secret-box.js';
import { createBootstrapKey } from './services/api-keys.js';
import type { Clock } from './services/context.js';
import { type DatabaseHandle, openAndMigrate, type OpenDatabaseOptions } from './storage/open-database.js';

export const systemClock: Clock = () => Date.now();

export function databaseOptions(config: Config): OpenDatabaseOptions {
  return config.databaseUrl
    ? { kind: 'postgres', url: config.databaseUrl, poolSize: config.databasePoolSize }
    : { kind: 'embedded', dataDir: config.dataDir };
}

export type Server = {
  app: App;
  database: DatabaseHandle;
  /** Set when the server made the first key of an empty installation; shown once, never stored. */
  firstApiKey: string | undefined;
  close(): Promise<void>;
};

type Shared = {
  logger: FastifyBaseLogger;
  database: DatabaseHandle;
  secretBox: SecretBox;
  guard: OutboundGuard;
  http: GuardedHttp;
  connectors: Connectors;
  metrics: Metrics;
};

/** Checks what needs no database first, so a bad setting fails fast and leaves nothing open. */
async function openShared(config: Config): Promise<Shared> {
  const logger = pino({ level: config.logLevel, serializers: logSerializers }) as FastifyBaseLogger;
  const secretBox = new SecretBox(
    resolveEncryptionKey({
      configured: config.encryptionKey,
      ...(config.databaseUrl ? {} : { embeddedDataDir: config.dataDir }),
    }),
  );
  const guard = new OutboundGuard({ allow: config.outboundAllow });
  const database = await openAndMigrate(databaseOptions(config));
  const http = new GuardedHttp(guard);
  return {
    logger,
    database,
    secretBox,
    guard,
    http,
    connectors: createConnectors(http, { google: config.google, outlook: config.outlook }),
    metrics: createMetrics({ processMetrics: true }),
  };
}

async function startDispatcher(shared: Shared, config: Config): Promise<{ stop(): Promise<void> }> {
  const deliveries = shared.metrics.webhookDeliveries;
  const dispatcher = new WebhookDispatcher({
    db: shared.database.db,
    clock: systemClock,
    secretBox: shared.secretBox,
    guard: shared.guard,
    logger: shared.logger,
    leaseMs: config.webhookLeaseSeconds * 1000,
    onOutcome: (outcome) => deliveries.inc({ outcome }),
  });
  // Set up before the API serves anything: PGlite's LISTEN must not land inside a request's transaction.
  const unlisten = await shared.database.listen(WEBHOOK_DELIVERIES_CHANNEL, () => dispatcher.wake());
  dispatcher.start();
  const calendarSync = new CalendarSyncWorker({
    database: shared.database,
    deps: {
      db: shared.database.db,
      clock: systemClock,
      secretBox: shared.secretBox,
      connectors: shared.connectors,
    },
    logger: shared.logger,
    onOutcome: ({ provider, outcome }) => shared.metrics.calendarSyncs.inc({ provider, outcome }),
  });
  await calendarSync.start();
  return {
    stop: async () => {
      await unlisten();
      await dispatcher.stop();
      await calendarSync.stop();
      await shared.http.close();
    },
  };
}

/** The only place that picks concrete adapters: the database, the clock, the logger, the key. */
export async function composeServer(config: Config): Promise<Server> {
  const shared = await openShared(config);
  const { database } = shared;
  try {
    let firstApiKey: string | undefined;
    if (config.bootstrapApiKey) {
      await createBootstrapKey(database.db, {
        organization: 'default',
        scopes: ['admin'],
        key: config.bootstrapApiKey,
      });
    } else {
      const anyKey = await database.db
        .selectFrom('api_keys')
        .select('api_key_id')
        .limit(1)
        .executeTakeFirst();
      if (!anyKey) {
        firstApiKey = (
          await createBootstrapKey(database.db, {
            organization: 'default',
            scopes: ['admin'],
            name: 'first admin key',
          })
        ).key;
      }
    }
    const app = await buildApp({
      db: database.db,
      databaseKind: database.kind,
      clock: systemClock,
      secretBox: shared.secretBox,
      outboundGuard: shared.guard,
      logger: shared.logger,
      metrics: shared.metrics,
      connectors: shared.connectors,
      publicUrl: config.publicUrl,
    });
    const background = await startDispatcher(shared, config);
    return {
      app,
      database,
      firstApiKey,
      close: async () => {
        try {
          await app.close();
          await background.stop();
        } finally {
          await database.close();
        }
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}

/** `sched worker`: background work only, for running more of it beside the API processes. */
export async function composeWorker(config: Config): Promise<{ close(): Promise<void> }> {
  const shared = await openShared(config);
  const background = await startDispatcher(shared, config);
  return {
    close: async () => {
      try {
        await background.stop();
      } finally {
        await shared.database.close();
      }
    },
  };
}

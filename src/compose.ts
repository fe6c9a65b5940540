import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import type { Config } from './config.js';
import { type App, buildApp } from './http/build-app.js';
import { createMetrics } from './http/metrics.js';
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

/** The only place that picks concrete adapters: the database, the clock, the logger. */
export async function composeServer(config: Config): Promise<Server> {
  const logger = pino({ level: config.logLevel }) as FastifyBaseLogger;
  const database = await openAndMigrate(databaseOptions(config));
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
      logger,
      metrics: createMetrics({ processMetrics: true }),
    });
    return {
      app,
      database,
      firstApiKey,
      close: async () => {
        try {
          await app.close();
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

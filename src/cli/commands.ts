import type { Config } from '../config.js';
import { composeServer, composeWorker, databaseOptions } from '../compose.js';
import { createBootstrapKey } from '../services/api-keys.js';
import type { Scope } from '../services/context.js';
import { migrateToLatest } from '../storage/migrate.js';
import { openAndMigrate, openDatabase } from '../storage/open-database.js';
import type { Kysely } from 'kysely';

const say = (line: string) => process.stderr.write(`${line}\n`);

export async function serveCommand(config: Config): Promise<number> {
  const server = await composeServer(config);
  const address = await server.app.listen({ port: config.port, host: config.host });
  const where = config.databaseUrl
    ? 'PostgreSQL (DATABASE_URL)'
    : `the embedded database in ${config.dataDir}`;
  say(`Sched is listening on ${address}, using ${where}.`);
  say(`API docs: ${address}/docs   OpenAPI: ${address}/openapi.json`);
  if (server.firstApiKey) {
    say('');
    say('This is a new installation. Its first admin API key (organization "default"), shown only now:');
    say(`  ${server.firstApiKey}`);
    say(`Try: curl -H "Authorization: Bearer ${server.firstApiKey}" ${address}/resources`);
  } else {
    say('API keys: POST /api-keys with an admin key, or stop the server and run');
    say('  npx sched api-keys create --org <name> --scopes admin');
  }

  closeOnSignal(() => server.close());
  return 0;
}

function closeOnSignal(close: () => Promise<void>): void {
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    say(`Received ${signal}; finishing open work and closing.`);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        say(`Shutdown failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

export async function workerCommand(config: Config): Promise<number> {
  const worker = await composeWorker(config);
  say('Sched worker running: delivering webhooks.');
  closeOnSignal(() => worker.close());
  return 0;
}

export async function migrateCommand(config: Config): Promise<number> {
  const handle = await openDatabase(databaseOptions(config));
  try {
    const { applied } = await migrateToLatest(handle.db as unknown as Kysely<unknown>);
    say(applied.length === 0 ? 'The database is up to date.' : `Applied: ${applied.join(', ')}`);
    return 0;
  } finally {
    await handle.close();
  }
}

export async function createApiKeyCommand(
  config: Config,
  input: { organization: string; scopes: Scope[]; name?: string },
): Promise<number> {
  const handle = await openAndMigrate(databaseOptions(config));
  try {
    const created = await createBootstrapKey(handle.db, {
      ...input,
      name: input.name ?? 'created by sched api-keys create',
    });
    process.stdout.write(`${created.key}\n`);
    say(
      `Created an API key with scopes ${input.scopes.join(', ')} for organization "${input.organization}".`,
    );
    return 0;
  } finally {
    await handle.close();
  }
}

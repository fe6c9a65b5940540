import { type Config, ConfigError, loadConfig } from '../config.js';
import { composeServer, composeWorker, databaseOptions } from '../dependencies.js';
import { createBootstrapKey } from '../services/api-keys.js';
import type { Scope } from '../services/context.js';
import { MissingEncryptionKeyError } from '../security/secret-box.js';
import { EmbeddedDatabaseBusyError } from '../storage/embedded-lock.js';
import { migrateToLatest } from '../storage/migrate.js';
import { openAndMigrate, openDatabase } from '../storage/open-database.js';
import type { Kysely } from 'kysely';

const say = (line: string) => process.stderr.write(`${line}\n`);

/** The settings from the environment; a bad value is a ConfigError naming the variable. */
export function loadServerConfig(): Config {
  return loadConfig();
}

/** A failure an operator fixes (a setting, a busy data dir, a missing key): its message, no stack. */
export function operatorMessage(error: unknown): string | null {
  return error instanceof ConfigError ||
    error instanceof EmbeddedDatabaseBusyError ||
    error instanceof MissingEncryptionKeyError
    ? error.message
    : null;
}

export async function serveCommand(config: Config): Promise<number> {
  const server = await composeServer(config);
  let started: { address: string; firstApiKey: string | undefined };
  try {
    started = await server.listen();
  } catch (error) {
    await server.close().catch(() => undefined);
    throw listenFailure(error, config);
  }
  const { address, firstApiKey } = started;
  const where = config.databaseUrl
    ? 'PostgreSQL (DATABASE_URL)'
    : `the embedded database in ${config.dataDir}`;
  say(`Sched is listening on ${address}, using ${where}.`);
  say(`API docs: ${address}/docs   OpenAPI: ${address}/openapi.json`);
  for (const warning of server.dependencies.warnings) say(`Warning: ${warning}.`);
  if (firstApiKey) {
    say('');
    say('This is a new installation. Its first admin API key (organization "default"), shown only now:');
    say(`  ${firstApiKey}`);
    say(`Try: curl -H "Authorization: Bearer ${firstApiKey}" ${address}/resources`);
  } else {
    say('API keys: POST /api-keys with an admin key, or stop the server and run');
    say('  npx sched api-keys create --org <name> --scopes admin');
  }

  closeOnSignal(() => server.close());
  return 0;
}

/** A listen error as the operator needs it: which address, and what to change. */
function listenFailure(error: unknown, config: Config): Error {
  const code = (error as { code?: unknown }).code;
  if (code === 'EADDRINUSE') {
    return new ConfigError(
      'PORT',
      `${config.host}:${config.port} is already in use; stop the other server or set another PORT`,
    );
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
    return new ConfigError('HOST', `cannot listen on ${config.host}:${config.port} (${String(code)})`);
  }
  return error instanceof Error ? error : new Error(String(error));
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
  for (const warning of worker.dependencies.warnings) say(`Warning: ${warning}.`);
  say('Sched worker running: delivering webhooks and syncing calendars.');
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

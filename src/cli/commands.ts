import { type Config, ConfigError, loadConfig } from '../config.js';
import { composeServer, composeWorker, databaseOptions } from '../dependencies.js';
import { createBootstrapKey } from '../services/api-keys.js';
import type { Scope } from '../services/context.js';
import {
  EncryptionKeyFileError,
  onlyCurrent,
  resolveEncryptionKey,
  type ResolvedKeys,
  withNewKey,
  writeKeyFile,
} from '../security/keys.js';
import {
  type ColumnCount,
  countSealedValues,
  remainingValues,
  resealAll,
  type ResealOptions,
} from '../security/rotation.js';
import { MissingEncryptionKeyError, SecretBox } from '../security/secret-box.js';
import { sealPlaintextWebhookUrls } from '../services/webhooks.js';
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
    error instanceof MissingEncryptionKeyError ||
    error instanceof EncryptionKeyFileError
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

/**
 * `sched mcp`: the MCP server on standard input and output, for an agent host that starts it. The key
 * is checked before anything opens; standard output is the protocol's alone, so what would print there
 * (console.log included) goes to standard error. Exits 0 when the client ends its input or on a signal.
 */
export async function mcpCommand(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { mcpApiKey, startStdioMcp } = await import('../mcp/stdio.js');
  const apiKey = mcpApiKey(env);
  console.log = console.info = console.debug = console.error;
  const mcp = await startStdioMcp(config, apiKey);
  const where = config.databaseUrl
    ? 'PostgreSQL (DATABASE_URL)'
    : `the embedded database in ${config.dataDir}`;
  say(`Sched MCP server on stdio, acting as ${mcp.actor.label}, using ${where}.`);
  let closing = false;
  const shutdown = (why: string) => {
    if (closing) return;
    closing = true;
    say(`${why}; answering open calls and closing.`);
    mcp.close().then(
      () => process.exit(0),
      (error: unknown) => {
        say(`Shutdown failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('Received SIGINT'));
  process.once('SIGTERM', () => shutdown('Received SIGTERM'));
  void mcp.ended.then(() => shutdown('The client closed standard input'));
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

const out = (line: string) => process.stdout.write(`${line}\n`);

function keysOf(config: Config): ResolvedKeys {
  return resolveEncryptionKey({
    configured: config.encryptionKey,
    ...(config.databaseUrl ? {} : { embeddedDataDir: config.dataDir }),
  });
}

/** Where the keys come from, as the operator set them. */
function keySource(config: Config, keys: ResolvedKeys): string {
  return keys.managedFile ?? config.encryptionKey?.source ?? 'SCHED_ENCRYPTION_KEY';
}

function versionList(versions: readonly number[]): string {
  return versions.length === 1 ? `version ${versions[0]}` : `versions ${versions.join(', ')}`;
}

/** One line a sealed column: how many values each key version holds (and any in plain text). */
function printCounts(counts: readonly ColumnCount[], held: readonly number[]): void {
  const versions = [...new Set([...held, ...counts.flatMap((count) => [...count.byVersion.keys()])])].sort(
    (a, b) => a - b,
  );
  const plain = counts.some((count) => count.plaintext > 0);
  const width = Math.max(...counts.map((count) => count.column.length)) + 2;
  const header = [...versions.map((v) => `v${v}`), ...(plain ? ['plain'] : [])];
  out(`  ${''.padEnd(width)}${header.map((h) => h.padStart(8)).join('')}`);
  for (const count of counts) {
    const cells = [
      ...versions.map((v) => String(count.byVersion.get(v) ?? 0)),
      ...(plain ? [String(count.plaintext)] : []),
    ];
    out(`  ${count.column.padEnd(width)}${cells.map((c) => c.padStart(8)).join('')}`);
  }
}

/** What is left under other versions, said once a status or a rotation has counted. */
function printRemaining(counts: readonly ColumnCount[], box: SecretBox): number {
  const remaining = remainingValues(counts, box.currentVersion);
  const older = box.versions.filter((version) => version !== box.currentVersion);
  if (remaining > 0) {
    out(`${remaining} value(s) are not under the current key version ${box.currentVersion} yet.`);
  } else if (older.length > 0) {
    out(`Every value is under key version ${box.currentVersion}; ${versionList(older)} can be removed.`);
  } else {
    out(`Every value is under key version ${box.currentVersion}.`);
  }
  return remaining;
}

/** `sched keys status`: how many sealed values each key version holds, per column. */
export async function keysStatusCommand(config: Config, options: { check: boolean }): Promise<number> {
  keysOf(config);
  const handle = await openAndMigrate(databaseOptions(config));
  try {
    const keys = keysOf(config);
    const box = new SecretBox(keys.keyring);
    out(
      `Key ${versionList(box.versions)} from ${keySource(config, keys)}; version ${box.currentVersion} seals.`,
    );
    const counts = await countSealedValues(handle.db);
    printCounts(counts, box.versions);
    const remaining = printRemaining(counts, box);
    return options.check && remaining > 0 ? 1 : 0;
  } finally {
    await handle.close();
  }
}

/**
 * `sched keys rotate`: where Sched keeps the key file (the embedded database), adds a new key version
 * and makes it current; then re-seals every sealed value under the current version. The file is
 * written before any value is re-sealed, so an interrupted rotation leaves every value readable and
 * `--reseal-only` finishes it.
 */
export async function keysRotateCommand(
  config: Config,
  options: { resealOnly: boolean; retire: boolean; batchSize: number } & Pick<ResealOptions, 'beforeWrite'>,
): Promise<number> {
  const given = keysOf(config);
  if (options.retire && !given.managedFile) {
    say(
      `sched: --retire changes only the embedded database's key file; the keys come from ${keySource(config, given)}: remove the old version there once sched keys status says it can go.`,
    );
    return 1;
  }
  // The database first: on the embedded one, its lock says no server is running with the old keys.
  const handle = await openAndMigrate(databaseOptions(config));
  try {
    const keys = keysOf(config);
    let keyring = keys.keyring;
    if (keys.managedFile && !options.resealOnly) {
      keyring = withNewKey(keyring);
      writeKeyFile(keys.managedFile, keyring);
      out(`Added key version ${keyring.current} to ${keys.managedFile}; it seals from now on.`);
    } else if (!keys.managedFile) {
      say(
        `The keys come from ${keySource(config, keys)}, which Sched does not write: re-sealing under the current version ${keyring.current}.`,
      );
    }
    const box = new SecretBox(keyring);
    const urls = await sealPlaintextWebhookUrls(handle.db, box);
    if (urls > 0) out(`Sealed ${urls} webhook URL(s) stored in the clear.`);
    const reports = await resealAll(handle.db, box, {
      batchSize: options.batchSize,
      ...(options.beforeWrite ? { beforeWrite: options.beforeWrite } : {}),
    });
    out(`Re-sealed under key version ${box.currentVersion}:`);
    const width = Math.max(...reports.map((report) => report.column.length)) + 2;
    for (const report of reports) {
      const notes = [
        ...(report.changedMeanwhile > 0
          ? [`${report.changedMeanwhile} changed meanwhile, kept as written`]
          : []),
        ...(report.unreadable > 0 ? [`${report.unreadable} sealed under a key not held`] : []),
      ];
      out(
        `  ${report.column.padEnd(width)}${String(report.resealed).padStart(8)}${notes.length > 0 ? `  (${notes.join('; ')})` : ''}`,
      );
    }
    const remaining = printRemaining(await countSealedValues(handle.db), box);
    if (remaining > 0) {
      say('Run sched keys rotate --reseal-only again once every process seals with the current key.');
      return 1;
    }
    if (options.retire && keys.managedFile && keyring.keys.size > 1) {
      const older = box.versions.filter((version) => version !== box.currentVersion);
      writeKeyFile(keys.managedFile, onlyCurrent(keyring));
      out(`Removed key ${versionList(older)} from ${keys.managedFile}.`);
    }
    return 0;
  } finally {
    await handle.close();
  }
}

import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { btree_gist } from '@electric-sql/pglite/contrib/btree_gist';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database, Db } from './database.js';
import { acquireEmbeddedLock } from './embedded-lock.js';
import { migrateToLatest } from './migrate.js';
import { PGliteDialect, yieldToEventLoop } from './pglite-dialect.js';

export type DatabaseKind = 'embedded' | 'postgres';

export type DatabaseHandle = {
  db: Db;
  kind: DatabaseKind;
  /**
   * Calls `onNotify` with the payload of each NOTIFY on `channel` (at the notifying transaction's
   * commit); returns the way to stop. After the listening connection was lost and is back, it is
   * called once without a payload: anything may have changed while no one listened.
   */
  listen: (channel: string, onNotify: NotifyHandler) => Promise<() => Promise<void>>;
  /**
   * Raw SQL for libraries that bring their own statements (pg-boss). Parameterless text may hold
   * several statements. On the embedded database it waits its turn with Kysely's queries.
   */
  executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  close(): Promise<void>;
};

/** `payload` is undefined when notifications may have been missed (the listener reconnected). */
export type NotifyHandler = (payload: string | undefined) => void;

const CHANNEL = /^[a-z_][a-z0-9_]*$/;
/** How often the listening connection is asked to answer, so a connection that died silently is noticed. */
export const LISTENER_CHECK_MS = 2000;

/**
 * A connection of its own that LISTENs, and comes back after the server drops it. It is asked to
 * answer every LISTENER_CHECK_MS: one that errs or stays silent (a half-open socket raises no error)
 * is replaced, and once the new one listens `onNotify(undefined)` says that notifications may have
 * been missed in between.
 */
async function listenOnPostgres(
  url: string,
  channel: string,
  onNotify: NotifyHandler,
): Promise<() => Promise<void>> {
  if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${channel}`);
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let checking = false;
  const connect = async (): Promise<void> => {
    retry = undefined;
    if (stopped) return;
    const next = new pg.Client({ connectionString: url, application_name: `sched listen ${channel}` });
    next.on('notification', (message) => {
      if (message.channel === channel) onNotify(message.payload ?? '');
    });
    next.on('error', () => drop(next));
    next.on('end', () => drop(next));
    client = next;
    await next.connect();
    await next.query(`listen ${channel}`);
  };
  const reconnect = () => {
    connect().then(
      () => {
        if (!stopped) onNotify(undefined);
      },
      () => client && drop(client),
    );
  };
  const drop = (lost: pg.Client) => {
    if (client !== lost) return;
    client = undefined;
    lost.removeAllListeners('notification');
    void lost.end().catch(() => undefined);
    if (!stopped) retry = setTimeout(reconnect, 1000);
  };
  const check = setInterval(() => {
    const current = client;
    if (!current || checking) return;
    checking = true;
    const silent = setTimeout(() => drop(current), LISTENER_CHECK_MS);
    current
      .query('select 1')
      .catch(() => drop(current))
      .finally(() => {
        clearTimeout(silent);
        checking = false;
      });
  }, LISTENER_CHECK_MS);
  check.unref();
  try {
    await connect();
  } catch (error) {
    stopped = true;
    clearInterval(check);
    if (retry) clearTimeout(retry);
    await client?.end().catch(() => undefined);
    throw error;
  }
  return async () => {
    stopped = true;
    clearInterval(check);
    if (retry) clearTimeout(retry);
    await client?.end().catch(() => undefined);
  };
}

/** PGlite runs in this process, so its LISTEN is a callback; it must be set up while nothing else runs. */
async function listenOnPGlite(
  pglite: PGlite,
  channel: string,
  onNotify: NotifyHandler,
): Promise<() => Promise<void>> {
  if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${channel}`);
  const unsubscribe = await pglite.listen(channel, (payload) => onNotify(payload));
  return () => unsubscribe();
}

/** Holds Kysely's single PGlite connection for the call, so a raw statement never lands inside a transaction. */
async function executeOnPGlite(
  db: Kysely<Database>,
  pglite: PGlite,
  text: string,
  values: unknown[] | undefined,
): Promise<{ rows: unknown[] }> {
  return db.connection().execute(async () => {
    await yieldToEventLoop();
    if (!values || values.length === 0) {
      const results = await pglite.exec(text);
      return { rows: results.at(-1)?.rows ?? [] };
    }
    const result = await pglite.query(text, values);
    return { rows: result.rows };
  });
}

export type OpenDatabaseOptions =
  | { kind: 'postgres'; url: string; poolSize?: number }
  | { kind: 'embedded'; dataDir: string }
  | { kind: 'embedded-memory'; loadDataDir?: Blob };

// Bookings carry timestamptz; int8 counts come back as strings unless we ask for numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function createPGlite(dataDir?: string, loadDataDir?: Blob): Promise<PGlite> {
  return PGlite.create({
    ...(dataDir ? { dataDir } : {}),
    ...(loadDataDir ? { loadDataDir } : {}),
    extensions: { btree_gist },
  });
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  if (options.kind === 'postgres') {
    const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10 });
    // An idle connection the server drops (restart, failover, terminate) is discarded by the pool and
    // the next query opens another; unlistened, the error event would crash the process.
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const url = options.url;
    return {
      db,
      kind: 'postgres',
      listen: (channel, onNotify) => listenOnPostgres(url, channel, onNotify),
      executeSql: async (text, values) => ({ rows: (await pool.query(text, values)).rows }),
      close: () => db.destroy(),
    };
  }
  if (options.kind === 'embedded-memory') {
    const pglite = await createPGlite(undefined, options.loadDataDir);
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
    return {
      db,
      kind: 'embedded',
      listen: (channel, onNotify) => listenOnPGlite(pglite, channel, onNotify),
      executeSql: (text, values) => executeOnPGlite(db, pglite, text, values),
      close: () => db.destroy(),
    };
  }
  const release = acquireEmbeddedLock(options.dataDir);
  try {
    const pglite = await createPGlite(path.join(options.dataDir, 'pgdata'));
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
    return {
      db,
      kind: 'embedded',
      listen: (channel, onNotify) => listenOnPGlite(pglite, channel, onNotify),
      executeSql: (text, values) => executeOnPGlite(db, pglite, text, values),
      close: async () => {
        try {
          await db.destroy();
        } finally {
          release();
        }
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}

export async function openAndMigrate(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  const handle = await openDatabase(options);
  try {
    await migrateToLatest(handle.db as unknown as Kysely<unknown>);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { openStoredValue, type SecretBox, sealedPrefix } from './secret-box.js';

type KeyColumn = { name: string; type: 'uuid' | 'text' };

/** A column holding sealed values, with the primary key its rows are found and changed by. */
export type SealedColumn = {
  table: string;
  column: string;
  key: readonly KeyColumn[];
  /** Rows written before the column was sealed may hold plain text; rotation seals them too. */
  plaintextToo?: boolean;
};

const WEBHOOK: readonly KeyColumn[] = [{ name: 'webhook_id', type: 'uuid' }];

/** Every sealed column of the schema; a test compares this list with the migrations. */
export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: 'webhook_endpoints', column: 'secret_sealed', key: WEBHOOK },
  { table: 'webhook_endpoints', column: 'previous_secret_sealed', key: WEBHOOK },
  { table: 'webhook_endpoints', column: 'url_sealed', key: WEBHOOK },
  {
    table: 'calendar_connections',
    column: 'credentials_sealed',
    key: [{ name: 'connection_id', type: 'uuid' }],
  },
  {
    table: 'oauth_authorizations',
    column: 'code_verifier_sealed',
    key: [{ name: 'state_hash', type: 'text' }],
  },
  {
    table: 'idempotency_keys',
    column: 'response_body',
    key: [
      { name: 'organization_id', type: 'uuid' },
      { name: 'idempotency_key', type: 'text' },
    ],
    plaintextToo: true,
  },
];

export function columnLabel(column: SealedColumn): string {
  return `${column.table}.${column.column}`;
}

export type ColumnCount = {
  column: string;
  /** How many values are sealed under each key version. */
  byVersion: Map<number, number>;
  /** Values not sealed at all (idempotent responses stored before sealing). */
  plaintext: number;
};

/** How many values of each sealed column are under each key version. */
export async function countSealedValues(db: Db): Promise<ColumnCount[]> {
  const counts: ColumnCount[] = [];
  for (const column of SEALED_COLUMNS) {
    const value = sql.ref(column.column);
    const { rows } = await sql<{ version: string | null; count: number }>`
      select substring(${value} from '^v([1-9][0-9]*)[.]') as version, count(*)::int as count
      from ${sql.table(column.table)} where ${value} is not null group by 1`.execute(db);
    const byVersion = new Map<number, number>();
    let plaintext = 0;
    for (const row of rows) {
      if (row.version === null) plaintext += row.count;
      else byVersion.set(Number(row.version), row.count);
    }
    counts.push({ column: columnLabel(column), byVersion, plaintext });
  }
  return counts;
}

/** Values not sealed under `current`: what a rotation still has to do. */
export function remainingValues(counts: readonly ColumnCount[], current: number): number {
  return counts.reduce(
    (sum, count) =>
      sum +
      count.plaintext +
      [...count.byVersion].reduce((inner, [version, n]) => inner + (version === current ? 0 : n), 0),
    0,
  );
}

export type ResealReport = {
  column: string;
  /** Values now sealed under the current version by this run. */
  resealed: number;
  /** Rows another write changed between our read and our update; theirs was kept. */
  changedMeanwhile: number;
  /** Values sealed under a version this process does not hold (left as they are). */
  unreadable: number;
};

export type ResealOptions = {
  /** Rows read and written at a time. */
  batchSize?: number;
  /** Runs between reading a batch and writing it back (tests put a concurrent write here). */
  beforeWrite?: (column: string) => Promise<void>;
};

type Change = { key: unknown[]; previous: string; next: string };

/** A rotation reads again what a concurrent write changed, this many times at most. */
const MAX_PASSES = 3;

/**
 * Re-seals every sealed value that is not under the box's current key version, column by column, in
 * batches in key order. Each row is written with a compare-and-set on the sealed value it was read
 * with, so a write made meanwhile (a secret rotated, a token refreshed) is never overwritten; such
 * rows are read again in a further pass. Serving processes go on meanwhile: they hold both versions.
 */
export async function resealAll(
  db: Db,
  box: SecretBox,
  options: ResealOptions = {},
): Promise<ResealReport[]> {
  const reports: ResealReport[] = [];
  for (const column of SEALED_COLUMNS) reports.push(await resealColumn(db, box, column, options));
  return reports;
}

async function resealColumn(
  db: Db,
  box: SecretBox,
  column: SealedColumn,
  options: ResealOptions,
): Promise<ResealReport> {
  const batchSize = options.batchSize ?? 500;
  const label = columnLabel(column);
  const report: ResealReport = { column: label, resealed: 0, changedMeanwhile: 0, unreadable: 0 };
  const unreadable = new Set<string>();
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    let after: unknown[] | undefined;
    let lost = 0;
    for (;;) {
      const rows = await readBatch(db, column, sealedPrefix(box.currentVersion), after, batchSize);
      if (rows.length === 0) break;
      after = rows.at(-1)!.key;
      const changes: Change[] = [];
      for (const row of rows) {
        const plaintext = openStoredValue(box, row.sealed, column.plaintextToo ?? false);
        if (plaintext === undefined) unreadable.add(JSON.stringify(row.key));
        else changes.push({ key: row.key, previous: row.sealed, next: box.seal(plaintext) });
      }
      if (changes.length > 0) {
        await options.beforeWrite?.(label);
        const written = await writeBatch(db, column, changes);
        report.resealed += written;
        lost += changes.length - written;
      }
      if (rows.length < batchSize) break;
    }
    report.changedMeanwhile += lost;
    if (lost === 0) break;
  }
  report.unreadable = unreadable.size;
  return report;
}

function typed(value: unknown, key: KeyColumn): RawBuilder<unknown> {
  return sql`${value}::${sql.raw(key.type)}`;
}

async function readBatch(
  db: Db,
  column: SealedColumn,
  currentPrefix: string,
  after: unknown[] | undefined,
  limit: number,
): Promise<{ key: unknown[]; sealed: string }[]> {
  const keys = sql.join(column.key.map((key) => sql.ref(key.name)));
  const value = sql.ref(column.column);
  const past = after
    ? sql`and (${keys}) > (${sql.join(after.map((part, i) => typed(part, column.key[i]!)))})`
    : sql``;
  const { rows } = await sql<Record<string, unknown>>`
    select ${keys}, ${value} as sealed__ from ${sql.table(column.table)}
    where ${value} is not null and ${value} not like ${`${currentPrefix}%`} ${past}
    order by ${keys} limit ${limit}`.execute(db);
  return rows.map((row) => ({
    key: column.key.map((key) => row[key.name]),
    sealed: row.sealed__ as string,
  }));
}

/** One statement a batch; each row changes only if it still holds the value it was read with. */
async function writeBatch(db: Db, column: SealedColumn, changes: readonly Change[]): Promise<number> {
  const names = [...column.key.map((_, i) => sql.raw(`k${i}`)), sql.raw('previous'), sql.raw('next')];
  const values = changes.map(
    (change) =>
      sql`(${sql.join([
        ...change.key.map((part, i) => typed(part, column.key[i]!)),
        sql`${change.previous}::text`,
        sql`${change.next}::text`,
      ])})`,
  );
  const matches = column.key.map((key, i) => sql`${sql.ref(`t.${key.name}`)} = v.${sql.raw(`k${i}`)}`);
  const { rows } = await sql`
    update ${sql.table(column.table)} as t set ${sql.ref(column.column)} = v.next
    from (values ${sql.join(values)}) as v(${sql.join(names)})
    where ${sql.join(matches, sql` and `)} and ${sql.ref(`t.${column.column}`)} = v.previous
    returning 1 as written`.execute(db);
  return rows.length;
}

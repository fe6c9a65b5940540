import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';

/** Every knob of a run, read once from the environment and bounded so that no run can go on for long. */
export type Settings = {
  /** A PostgreSQL server URL whose user may CREATE DATABASE; each run makes (and drops) one of its own. */
  adminUrl: string;
  /** Seconds of measured load per side of a throughput pair, in 2-second runs over ABBA cycles. */
  loadSeconds: number;
  warmupSeconds: number;
  connections: number;
  /** Timed repetitions per availability variant. */
  samples: number;
  pglite: boolean;
  /** Benchmarks to run; all when empty. */
  only: string[];
};

function readInteger(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  }
  return value;
}

export function readSettings(): Settings {
  return {
    adminUrl: process.env.SCHED_BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    loadSeconds: readInteger('SCHED_BENCH_SECONDS', 12, 4, 60),
    warmupSeconds: readInteger('SCHED_BENCH_WARMUP_SECONDS', 2, 0, 10),
    connections: readInteger('SCHED_BENCH_CONNECTIONS', 64, 1, 256),
    samples: readInteger('SCHED_BENCH_SAMPLES', 15, 3, 100),
    pglite: process.env.SCHED_BENCH_PGLITE !== '0',
    only: (process.env.SCHED_BENCH_ONLY ?? '')
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
  };
}

/** One line of the table. The ratio is always ours / baseline. */
export type BenchRow = {
  name: string;
  ours: number;
  baseline: number;
  unit: 'ms' | 'req/s' | 'events/s';
  /** 'max': the ratio must stay at or below aim (times); 'min': at or above it (throughput). */
  aimKind: 'max' | 'min';
  /** Absent where the issue sets none: the row is reported, never counted as met or missed. */
  aim?: number;
  /** Set where the ratio is estimated otherwise than as ours / baseline (throughput: per-cycle median). */
  ratio?: number;
  /** Shown as "ours" where a row has no baseline (a latency as "median / p95"); baseline and ratio show '-'. */
  text?: string;
  note?: string;
};

export function ratioOf(row: BenchRow): number {
  return row.ratio ?? row.ours / row.baseline;
}

export function aimMet(row: BenchRow): boolean {
  if (row.aim === undefined) return true;
  const ratio = ratioOf(row);
  return row.aimKind === 'max' ? ratio <= row.aim : ratio >= row.aim;
}

function figure(value: number, unit: BenchRow['unit']): string {
  if (!Number.isFinite(value)) return String(value);
  return unit === 'ms' ? `${value.toFixed(1)} ms` : `${Math.round(value)} ${unit}`;
}

export function formatTable(rows: readonly BenchRow[]): string {
  const header = ['benchmark', 'ours', 'baseline', 'ratio', 'aim', 'met'];
  const body = rows.map((row) =>
    row.text !== undefined
      ? [row.name, row.text, '-', '-', 'none', '-']
      : [
          row.name,
          figure(row.ours, row.unit),
          figure(row.baseline, row.unit),
          `${ratioOf(row).toFixed(2)}×`,
          row.aim === undefined ? 'none' : `${row.aimKind === 'max' ? '≤' : '≥'} ${row.aim}×`,
          row.aim === undefined ? '-' : aimMet(row) ? 'yes' : 'NO',
        ],
  );
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((cells) => cells[column]!.length)),
  );
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  const rule = `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`;
  const notes = rows.filter((row) => row.note).map((row) => `- ${row.name}: ${row.note}`);
  return [line(header), rule, ...body.map(line), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

export function urlOfDatabase(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function withAdminClient<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export type BenchDatabase = { name: string; url: string; drop(): Promise<void> };

let databaseCounter = 0;

/** A fresh, empty database for this run; drop() is safe to call more than once. */
export async function createBenchDatabase(adminUrl: string): Promise<BenchDatabase> {
  const name = `sched_bench_${process.pid}_${Date.now()}_${databaseCounter++}`;
  await withAdminClient(adminUrl, (client) => client.query(`create database "${name}"`));
  let dropped = false;
  return {
    name,
    url: urlOfDatabase(adminUrl, name),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await withAdminClient(adminUrl, async (client) => {
        // pg-pool's end() resolves before its connections have closed; killing one still closing (WITH
        // (FORCE)) makes its pool emit 'error' with no listener, which ends the process. Let them go first.
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline) {
          const { rows } = await client.query<{ n: number }>(
            'select count(*)::int as n from pg_stat_activity where datname = $1',
            [name],
          );
          if ((rows[0]?.n ?? 0) === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        await client.query(`drop database if exists "${name}" with (force)`);
      });
    },
  };
}

export async function checkPostgres(adminUrl: string): Promise<void> {
  try {
    await withAdminClient(adminUrl, (client) => client.query('select 1'));
  } catch (error) {
    const shown = adminUrl.replace(/:[^:@/]*@/, ':***@');
    throw new Error(
      `no PostgreSQL at ${shown} (${(error as Error).message}); set SCHED_BENCH_DATABASE_URL to a server where this user may create databases`,
      { cause: error },
    );
  }
}

/** Listens on an ephemeral port of the loopback interface and returns the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address() as AddressInfo;
  return `http://127.0.0.1:${address.port}`;
}

/** The first instant of the UTC day after tomorrow: comfortably after now, whatever the minimum notice. */
export function dayAfterTomorrowUtc(now = Date.now()): number {
  const day = 86_400_000;
  return (Math.floor(now / day) + 2) * day;
}

/** A small deterministic PRNG (mulberry32), so every run seeds the same layout of bookings. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `pick` of the cells 0..count-1 in increasing order, chosen by a seeded shuffle. */
export function shuffledCells(count: number, pick: number, random: () => number): number[] {
  const cells = Array.from({ length: count }, (_, cell) => cell);
  for (let i = cells.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [cells[i], cells[j]] = [cells[j]!, cells[i]!];
  }
  return cells.slice(0, pick).sort((a, b) => a - b);
}

/**
 * The statements sent to PostgreSQL through node-postgres while `fn` runs (every pg.Client, pooled or
 * not), BEGIN and COMMIT included: the round trips one request costs. Only for a single request run
 * alone; the patch is removed before this returns.
 */
export async function recordStatements(fn: () => Promise<unknown>): Promise<string[]> {
  const statements: string[] = [];
  const prototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = prototype.query;
  prototype.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: string } | undefined)?.text;
    statements.push((text ?? '?').replace(/\s+/g, ' ').trim());
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    prototype.query = original;
  }
  return statements;
}

/** A statement shortened to its verb and table, for a one-line summary. */
export function statementSummary(statement: string): string {
  const verb = /^(select|insert into|update|delete from|with|begin|commit|rollback)\b/i.exec(statement)?.[1];
  if (!verb) return statement.slice(0, 30);
  // The table named after FROM / INTO / UPDATE, skipping function calls such as "extract(epoch from lower(x))".
  const tables = [...statement.matchAll(/\b(?:from|into|update)\s+"?(\w+)"?(\()?/gi)]
    .filter((match) => match[2] === undefined)
    .map((match) => match[1]);
  return `${verb.toLowerCase()} ${tables[0] ?? ''}`.trim();
}

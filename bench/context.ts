import type { DatabaseHandle } from '../src/storage/open-database.js';
import type { SchedApp } from './fixtures.js';
import type { LoadGenerator } from './load.js';
import type { BenchRow, Settings } from './support.js';

/** What every benchmark gets: the run's PostgreSQL database and the real app listening on it. */
export type BenchContext = {
  settings: Settings;
  load: LoadGenerator;
  /** Migrated, on the run's own database, opened with the server's default pool size. */
  database: DatabaseHandle;
  databaseUrl: string;
  poolSize: number;
  sched: SchedApp;
  /** Base URL of the real app, listening on 127.0.0.1. */
  schedUrl: string;
};

export type BenchOutcome = {
  rows: BenchRow[];
  /** Anything that makes a figure untrustworthy (unexpected statuses, errors): the run fails. */
  problems: string[];
  /** Extra lines for the analysis below the table. */
  details?: string[];
};

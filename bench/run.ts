/**
 * `npm run bench`: every figure is a ratio against a baseline measured in the same run on the same
 * machine. Prints one table; a missed aim is reported, not fatal; an error (a setup failure, a
 * response other than the one expected) makes the process exit non-zero.
 */
import os from 'node:os';
import { openAndMigrate } from '../src/storage/open-database.js';
import { benchAvailability } from './availability.js';
import { benchAvailabilityScaling } from './availability-scaling.js';
import { benchBookings } from './bookings.js';
import { benchCalendarAvailability, benchCalendarSync, type Defer } from './calendars.js';
import type { BenchContext, BenchOutcome } from './context.js';
import { startSchedApp } from './fixtures.js';
import { benchHealthz } from './healthz.js';
import { LoadGenerator } from './load.js';
import { benchProviderPush, benchProviderSync } from './providers.js';
import { benchPublicBookings, benchPublicSlots } from './public-booking.js';
import { benchResponsiveness } from './responsiveness.js';
import { benchWebhooks } from './webhooks.js';
import {
  aimMet,
  type BenchRow,
  checkPostgres,
  createBenchDatabase,
  formatTable,
  listen,
  log,
  readSettings,
} from './support.js';

/** The server's default DATABASE_POOL_SIZE; the bare baselines get a pool of the same size. */
const POOL_SIZE = 10;
/** No run may take longer than this, whatever hangs. */
const WATCHDOG_MS = 15 * 60_000;

type Cleanup = { what: string; run: () => Promise<void> | void };

async function runCleanups(cleanups: Cleanup[]): Promise<void> {
  while (cleanups.length > 0) {
    const cleanup = cleanups.pop()!;
    try {
      await cleanup.run();
    } catch (error) {
      log(`cleanup "${cleanup.what}" failed: ${(error as Error).message}`);
    }
  }
}

function machine(): string {
  const cpus = os.cpus();
  const load = os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
  return `${cpus.length} cores (${cpus[0]?.model ?? 'unknown'}), Node ${process.version}, load average ${load}`;
}

async function main(): Promise<number> {
  const settings = readSettings();
  const selected = (name: string) => settings.only.length === 0 || settings.only.includes(name);
  const cleanups: Cleanup[] = [];
  const outcomes: Record<string, BenchOutcome> = {};
  const problems: string[] = [];
  let interrupted = false;
  // One cleanup for the whole run, whoever asks first (the run ending, a signal, the watchdog); the
  // others wait for the same one, so nothing exits while the database is still being dropped.
  let cleaning: Promise<void> | undefined;
  const cleanUp = () => (cleaning ??= runCleanups(cleanups));
  const defer: Defer = (what, run) => cleanups.push({ what, run });

  const stop = (reason: string, code: number) => {
    if (interrupted) return;
    interrupted = true;
    log(`${reason}: cleaning up`);
    void cleanUp().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => stop('interrupted', 130));
  process.once('SIGTERM', () => stop('terminated', 143));
  setTimeout(() => stop(`still running after ${WATCHDOG_MS / 60_000} minutes`, 1), WATCHDOG_MS).unref();

  const startedAt = Date.now();
  log(`machine: ${machine()}`);
  try {
    await checkPostgres(settings.adminUrl);
    const benchDatabase = await createBenchDatabase(settings.adminUrl);
    cleanups.push({ what: `drop database ${benchDatabase.name}`, run: () => benchDatabase.drop() });
    log(`database ${benchDatabase.name}`);
    const database = await openAndMigrate({ kind: 'postgres', url: benchDatabase.url, poolSize: POOL_SIZE });
    cleanups.push({ what: 'close the database pool', run: () => database.close() });
    const sched = await startSchedApp(database);
    cleanups.push({ what: 'close the app', run: () => sched.close() });
    const schedUrl = await listen(sched.app);
    const load = LoadGenerator.start();
    cleanups.push({ what: 'stop the load generator', run: () => load.close() });

    const context: BenchContext = {
      settings,
      load,
      database,
      databaseUrl: benchDatabase.url,
      poolSize: POOL_SIZE,
      sched,
      schedUrl,
    };
    // Throughput first, on small tables; the availability seed (100,000 bookings) comes after.
    if (selected('healthz')) outcomes.healthz = await benchHealthz(context);
    if (selected('bookings')) outcomes.bookings = await benchBookings(context);
    if (selected('public-bookings')) outcomes['public-bookings'] = await benchPublicBookings(context);
    if (selected('webhooks')) outcomes.webhooks = await benchWebhooks(context);
    if (selected('calendar-sync')) outcomes['calendar-sync'] = await benchCalendarSync(context, defer);
    if (selected('calendar-availability')) {
      outcomes['calendar-availability'] = await benchCalendarAvailability(context);
    }
    if (selected('provider-sync')) outcomes['provider-sync'] = await benchProviderSync(context, defer);
    if (selected('provider-push')) outcomes['provider-push'] = await benchProviderPush(context, defer);
    if (selected('responsiveness')) outcomes.responsiveness = await benchResponsiveness(context, defer);
    if (selected('availability')) {
      outcomes.availability = await benchAvailability({
        label: 'PostgreSQL',
        database,
        sched,
        baseUrl: schedUrl,
        samples: settings.samples,
      });
    }
    if (selected('public-slots')) outcomes['public-slots'] = await benchPublicSlots(context);
    if (selected('availability-scaling')) {
      outcomes['availability-scaling'] = await benchAvailabilityScaling(context);
    }
    if (selected('availability') && settings.pglite) {
      const embedded = await openAndMigrate({ kind: 'embedded-memory' });
      cleanups.push({ what: 'close PGlite', run: () => embedded.close() });
      const embeddedSched = await startSchedApp(embedded);
      cleanups.push({ what: 'close the PGlite app', run: () => embeddedSched.close() });
      outcomes.pglite = await benchAvailability({
        label: 'PGlite',
        database: embedded,
        sched: embeddedSched,
        baseUrl: await listen(embeddedSched.app),
        samples: Math.min(settings.samples, 9),
      });
    }
  } catch (error) {
    problems.push(
      `the run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  } finally {
    await cleanUp();
  }

  const ordered = [
    'availability',
    'pglite',
    'availability-scaling',
    'public-slots',
    'bookings',
    'public-bookings',
    'webhooks',
    'healthz',
    'calendar-sync',
    'calendar-availability',
    'provider-sync',
    'provider-push',
    'responsiveness',
  ].flatMap((name) => (outcomes[name] ? [outcomes[name]] : []));
  const rows: BenchRow[] = ordered.flatMap((outcome) => outcome.rows);
  problems.push(...ordered.flatMap((outcome) => outcome.problems));
  const details = ordered.flatMap((outcome) => outcome.details ?? []);

  const out: string[] = [];
  out.push(`Sched benchmarks — ${new Date(startedAt).toISOString()}, ${machine()}`);
  out.push(
    `took ${((Date.now() - startedAt) / 1000).toFixed(0)} s; ratio = ours / baseline ` +
      '(times: median / median; throughput: median over ABBA cycles)',
  );
  out.push('');
  if (rows.length > 0) out.push(formatTable(rows));
  if (details.length > 0) out.push('', 'Where the time goes:', ...details.map((line) => `- ${line}`));
  const aimed = rows.filter((row) => row.aim !== undefined);
  const missed = aimed.filter((row) => !aimMet(row));
  out.push('', `aims met: ${aimed.length - missed.length} of ${aimed.length}`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (problems.length > 0) {
    process.stderr.write(`\nERRORS (the figures above are not to be trusted):\n`);
    for (const problem of problems) process.stderr.write(`- ${problem}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${String(error)}\n`);
    process.exit(1);
  },
);

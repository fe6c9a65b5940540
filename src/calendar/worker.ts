import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import PgBoss from 'pg-boss';
import type { CalendarDeps } from './store/connections.js';
import { syncConnection } from './engine/sync.js';
import { RENEW_BEFORE_MS } from './store/watches.js';
import { ErrorCode, SchedError } from '../services/errors.js';
import { isRetryableConflict } from '../storage/errors.js';
import type { DatabaseHandle } from '../storage/open-database.js';

export const CALENDAR_SYNC_QUEUE = 'calendar-sync';
/** Notified by a trigger whenever a booking is queued for a connection's calendar. */
export const CALENDAR_PUSH_CHANNEL = 'sched_calendar_push';

export type CalendarSyncWorkerOptions = {
  database: DatabaseHandle;
  deps: CalendarDeps;
  logger?: FastifyBaseLogger;
  /** How often due connections are looked for; a NOTIFY wakes the scheduler sooner. */
  scanIntervalMs?: number;
  /** Syncs running at once in this process. */
  concurrency?: number;
  /** How often an idle worker asks pg-boss for a job. */
  pollingIntervalSeconds?: number;
  /** Told the outcome of every sync this process runs. */
  onOutcome?: (outcome: { provider: string; outcome: 'ok' | 'failed' | 'skipped' }) => void;
  /** Told each time the scheduler has finished looking for due connections (and queued them). */
  onScan?: () => void;
};

type SyncJob = { connectionId: string };

/**
 * Runs calendar syncs as pg-boss jobs on the application's own database. A `stately` queue keyed by
 * connection keeps at most one sync of a connection waiting and one running, across every process;
 * a scheduler in each process queues connections whose time has come or that have bookings to push.
 */
export class CalendarSyncWorker {
  readonly #o: Required<Omit<CalendarSyncWorkerOptions, 'logger' | 'onOutcome' | 'onScan'>> &
    Pick<CalendarSyncWorkerOptions, 'logger' | 'onOutcome' | 'onScan'>;
  readonly #boss: PgBoss;
  #timer: NodeJS.Timeout | undefined;
  #unlisten: (() => Promise<void>) | undefined;
  #scanning: Promise<void> | undefined;
  #rescan = false;
  #stopped = false;
  readonly #running = new Set<Promise<void>>();
  readonly #workerIds: string[] = [];

  constructor(options: CalendarSyncWorkerOptions) {
    this.#o = {
      scanIntervalMs: 5000,
      concurrency: 2,
      pollingIntervalSeconds: 1,
      ...options,
    };
    const database = options.database;
    this.#boss = new PgBoss({
      db: { executeSql: (text, values) => database.executeSql(text, values) },
      schema: 'pgboss',
      schedule: false,
      supervise: true,
    });
    this.#boss.on('error', (error) => this.#o.logger?.error({ err: error }, 'job queue error'));
  }

  async start(): Promise<void> {
    await this.#boss.start();
    await this.#ensureQueue();
    for (let index = 0; index < this.#o.concurrency; index++) {
      const workerId = await this.#boss.work<SyncJob>(
        CALENDAR_SYNC_QUEUE,
        { pollingIntervalSeconds: this.#o.pollingIntervalSeconds, batchSize: 1 },
        async (jobs) => {
          for (const job of jobs) await this.#run(job.data.connectionId);
        },
      );
      this.#workerIds.push(workerId);
    }
    this.#unlisten = await this.#o.database.listen(CALENDAR_PUSH_CHANNEL, () => this.wake());
    this.#timer = setInterval(() => this.wake(), this.#o.scanIntervalMs);
    this.wake();
  }

  /**
   * Processes starting together can deadlock in pg-boss's queue creation (each makes the queue's
   * partition); whoever loses tries again and then finds the queue made.
   */
  async #ensureQueue(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (await this.#boss.getQueue(CALENDAR_SYNC_QUEUE)) return;
        await this.#boss.createQueue(CALENDAR_SYNC_QUEUE, {
          name: CALENDAR_SYNC_QUEUE,
          policy: 'stately',
          // Retries and their backoff are the sync's own (kept on the connection), not the queue's.
          retryLimit: 0,
          expireInSeconds: 15 * 60,
        });
        return;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        const raced = isRetryableConflict(error) || code === '23505' || code === '42P07';
        if (attempt >= 5 || !raced) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
      }
    }
  }

  /** Queues a sync of one connection now (no-op while one is already waiting). */
  async enqueue(connectionId: string): Promise<void> {
    const jobId = await this.#boss.send(
      CALENDAR_SYNC_QUEUE,
      { connectionId },
      { singletonKey: connectionId },
    );
    // This process's workers would otherwise find the job only at their next poll.
    if (jobId) for (const workerId of this.#workerIds) this.#boss.notifyWorker(workerId);
  }

  wake(): void {
    if (this.#stopped) return;
    if (this.#scanning) {
      this.#rescan = true;
      return;
    }
    this.#scanning = this.#scan()
      .catch((error: unknown) => this.#o.logger?.error({ err: error }, 'calendar sync scan failed'))
      .finally(() => {
        this.#scanning = undefined;
        this.#o.onScan?.();
        if (this.#rescan) {
          this.#rescan = false;
          this.wake();
        }
      });
  }

  async #scan(): Promise<void> {
    const now = new Date(this.#o.deps.clock());
    const due = await sql<{ connection_id: string }>`
      select c.connection_id from calendar_connections c
      where c.status in ('active', 'error')
        and exists (select 1 from resources r where r.resource_id = c.resource_id and r.deleted_at is null)
        and (c.sync_lease_until is null or c.sync_lease_until < ${now})
        and (c.next_sync_at <= ${now}
          -- A push channel about to lapse is renewed even when nothing else is due.
          or (c.failure_count = 0 and exists (
            select 1 from calendar_watches w where w.connection_id = c.connection_id and not w.renew_now
              and w.expires_at < ${new Date(now.getTime() + RENEW_BEFORE_MS)}))
          -- Fresh pushes go at once; a failing connection waits for its backoff instead.
          or (c.direction <> 'pull' and c.failure_count = 0 and exists (
            select 1 from booking_calendar_links l
            where l.connection_id = c.connection_id and l.push_pending and l.push_attempts = 0)))
      order by c.next_sync_at nulls first
      limit 500`.execute(this.#o.deps.db);
    for (const row of due.rows) {
      if (this.#stopped) return;
      await this.enqueue(row.connection_id);
    }
  }

  /** Runs one sync, never rejecting: what fails is recorded on the connection and logged. */
  #run(connectionId: string): Promise<void> {
    // Stopping: the job is left to the next process that runs one; nothing starts on a closing database.
    if (this.#stopped) return Promise.resolve();
    const running = this.#sync(connectionId).catch((error: unknown) =>
      this.#o.logger?.error({ err: error, connectionId }, 'calendar sync job failed'),
    );
    this.#running.add(running);
    void running.finally(() => this.#running.delete(running));
    return running;
  }

  async #sync(connectionId: string): Promise<void> {
    const provider = await this.#o.deps.db
      .selectFrom('calendar_connections')
      .select('provider')
      .where('connection_id', '=', connectionId)
      .executeTakeFirst();
    if (!provider) return;
    try {
      await syncConnection(this.#o.deps, connectionId, {
        log: (message, error) => this.#o.logger?.warn({ err: error, connectionId }, message),
      });
      this.#o.onOutcome?.({ provider: provider.provider, outcome: 'ok' });
    } catch (error) {
      const skipped = error instanceof SchedError && error.code === ErrorCode.SYNC_IN_PROGRESS;
      this.#o.onOutcome?.({ provider: provider.provider, outcome: skipped ? 'skipped' : 'failed' });
      // Provider failures are already recorded on the connection with their retry time.
      if (!(error instanceof SchedError)) {
        this.#o.logger?.error({ err: error, connectionId }, 'calendar sync failed');
      } else if (!skipped) {
        this.#o.logger?.warn({ connectionId, code: error.code }, error.message);
      }
    } finally {
      // What came in during the sync (a booking change, a notification) was skipped by the scan.
      this.wake();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#unlisten?.();
    await this.#scanning;
    // Syncs under way finish before the queue stops, so none is left to fail on a closed database.
    await Promise.allSettled([...this.#running]);
    await this.#boss.stop({ graceful: true, wait: true, timeout: 10_000 });
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import type pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { describe, expect, inject, it } from 'vitest';
import {
  childEnv,
  CLI_ENTRY,
  type ClonedDatabase,
  cloneTemplateDatabase,
  randomApiKey,
  REPO_ROOT,
  type SpawnedServer,
  spawnServer,
  stopAll,
  TEST_ENCRYPTION_KEY,
} from '../support/spawn-server.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { waitForValue } from '../support/wait-for.js';
import { roundTheClockWeekly } from '../support/schedules.js';

/**
 * Webhook deliveries survive the death of the process sending them, on real PostgreSQL with real
 * processes: a `sched serve` killed with SIGKILL while a receiver holds its request open leaves the
 * delivery claimed but unrecorded, and the next process sends it again once the lease runs out. And two
 * `sched worker` processes draining one outbox send every event exactly once.
 */

const skipReason = inject('postgresSkipReason');
const REQUEST_TIMEOUT_MS = 15_000;
/** The shortest lease SCHED_WEBHOOK_LEASE_SECONDS allows, instead of the default 60 s. */
const LEASE_SECONDS = 20;
const HALF_HOUR = 30 * 60_000;

/** Runs every step, even when earlier ones fail, and then throws the first failure. */
async function cleanUp(steps: (() => Promise<unknown> | undefined)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw errors[0];
}

type Reply = { status: number; body: any };

async function call(server: SpawnedServer, key: string, method: string, url: string, body?: unknown) {
  const response = await fetch(`${server.url}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  const reply: Reply = { status: response.status, body: text };
  try {
    reply.body = JSON.parse(text);
  } catch {
    // Kept as text: the assertion that fails shows it.
  }
  return reply;
}

/** A room bookable around the clock, so any future half hour is free. */
async function createAlwaysOpenResource(server: SpawnedServer, key: string): Promise<string> {
  const created = await call(server, key, 'POST', '/resources', {
    name: 'Room',
    kind: 'room',
    time_zone: 'UTC',
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const id = created.body.resource_id as string;
  const schedule = await call(server, key, 'PUT', `/resources/${id}/schedule`, {
    time_zone: 'UTC',
    weekly: roundTheClockWeekly(),
  });
  expect(schedule.status, JSON.stringify(schedule.body)).toBe(200);
  return id;
}

/** The `index`-th half hour from midnight UTC two days ahead. */
function slot(index: number): { start_time: string; end_time: string } {
  const today = new Date();
  const base = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + 2);
  const start = base + index * HALF_HOUR;
  return { start_time: new Date(start).toISOString(), end_time: new Date(start + HALF_HOUR).toISOString() };
}

async function book(server: SpawnedServer, key: string, resourceId: string, index: number) {
  const created = await call(server, key, 'POST', '/bookings', {
    resource_ids: [resourceId],
    ...slot(index),
    title: `Visit ${index}`,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body as { booking_id: string };
}

async function query<T>(database: ClonedDatabase, text: string): Promise<T[]> {
  const client = await database.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

/** `sched worker` as a process of its own: no HTTP, so "ready" is its start-up line on stderr. */
type SpawnedWorker = { pid: number; output(): string; stop(): Promise<void> };

const workers = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of workers) child.kill('SIGKILL');
});

async function spawnWorker(env: Record<string, string>, timeoutMs = 45_000): Promise<SpawnedWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, 'worker'], {
    cwd: REPO_ROOT,
    env: childEnv({ LOG_LEVEL: 'warn', SCHED_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.add(child);
  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-64 * 1024);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      workers.delete(child);
      resolve();
    });
  });
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async () => {
    if (gone) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    await waitForValue(
      'sched worker start-up',
      () => {
        if (/Sched worker running/.test(output)) return true;
        if (gone) throw new Error(`sched worker exited before it was running:\n${output}`);
        return undefined;
      },
      timeoutMs,
      100,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid!, output: () => output, stop };
}

describe.skipIf(skipReason)(
  `webhook delivery across process crashes on real PostgreSQL${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  { timeout: 120_000 },
  () => {
    it('a worker killed with SIGKILL mid-delivery: the event is still delivered after restart, with the same webhook-id and a valid signature', async () => {
      const database = await cloneTemplateDatabase('whcrash');
      const receiver = await new WebhookReceiver().start();
      const servers: SpawnedServer[] = [];
      try {
        const key = randomApiKey();
        const env = {
          DATABASE_URL: database.url,
          SCHED_BOOTSTRAP_API_KEY: key,
          SCHED_OUTBOUND_ALLOW: '127.0.0.1/32',
          SCHED_WEBHOOK_LEASE_SECONDS: String(LEASE_SECONDS),
        };
        // The first request is held open far longer than the test: the process dies while sending it.
        receiver.behaviour = { status: 200, delayMs: 600_000 };
        const first = await spawnServer(env);
        servers.push(first);
        const resourceId = await createAlwaysOpenResource(first, key);
        const hook = await call(first, key, 'POST', '/webhooks', {
          url: receiver.url(),
          events: ['booking.created'],
        });
        expect(hook.status, JSON.stringify(hook.body)).toBe(201);
        const { webhook_id: webhookId, secret } = hook.body as { webhook_id: string; secret: string };
        const booking = await book(first, key, resourceId, 0);

        await waitForValue('the first delivery attempt', () => receiver.received[0], 15_000);
        // Claimed and in flight, nothing recorded yet; the lease is the configured one.
        const [claimed] = await query<{
          delivery_id: string;
          status: string;
          attempts: number;
          lease_until: Date;
          updated_at: Date;
        }>(database, 'select delivery_id, status, attempts, lease_until, updated_at from webhook_deliveries');
        expect(claimed).toMatchObject({ status: 'pending', attempts: 1 });
        expect(claimed!.lease_until.getTime() - claimed!.updated_at.getTime()).toBe(LEASE_SECONDS * 1000);

        expect(await first.kill('SIGKILL')).toBe('SIGKILL');
        receiver.behaviour = { status: 200, body: 'ok' };
        const second = await spawnServer(env);
        servers.push(second);

        const retried = await waitForValue(
          'the delivery after the restart',
          () => receiver.received[1],
          30_000,
        );
        const original = receiver.received[0]!;
        expect(original.headers['webhook-id']).toBe(`msg_${claimed!.delivery_id}`);
        expect(retried.headers['webhook-id']).toBe(original.headers['webhook-id']);
        expect(retried.body).toBe(original.body);
        // Not sent again before the dead process's lease ran out.
        expect(retried.at).toBeGreaterThanOrEqual(claimed!.lease_until.getTime());
        const verified = new Webhook(secret).verify(retried.body, retried.headers) as any;
        expect(verified.type).toBe('booking.created');
        expect(verified.data.booking_id).toBe(booking.booking_id);

        const delivery = await waitForValue(
          'the delivery recorded as succeeded',
          async () => {
            const listed = await call(second, key, 'GET', `/webhooks/${webhookId}/deliveries`);
            expect(listed.status).toBe(200);
            const entries = listed.body.deliveries as any[];
            expect(entries).toHaveLength(1);
            return entries[0].status === 'pending' ? undefined : entries[0];
          },
          15_000,
          100,
        );
        expect(delivery).toMatchObject({
          delivery_id: claimed!.delivery_id,
          status: 'succeeded',
          attempts: 2,
          response_status: 200,
          error: null,
        });
        const events = await query<{ event_id: string }>(database, 'select event_id from webhook_events');
        expect(events).toHaveLength(1);
        expect(receiver.received).toHaveLength(2);
      } finally {
        await cleanUp([() => stopAll(servers), () => receiver.stop(), () => database.drop()]);
      }
    });

    it('two worker processes on one database deliver each of 30 events exactly once, claiming at the same instant', async () => {
      const COUNT = 30;
      const database = await cloneTemplateDatabase('whpair');
      const receiver = await new WebhookReceiver().start();
      const servers: SpawnedServer[] = [];
      const started: SpawnedWorker[] = [];
      let gate: pg.Client | undefined;
      try {
        const key = randomApiKey();
        const env = { DATABASE_URL: database.url, SCHED_OUTBOUND_ALLOW: '127.0.0.1/32' };
        const server = await spawnServer({ ...env, SCHED_BOOTSTRAP_API_KEY: key });
        servers.push(server);
        const resourceId = await createAlwaysOpenResource(server, key);
        const hook = await call(server, key, 'POST', '/webhooks', {
          url: receiver.url(),
          events: ['booking.created'],
        });
        expect(hook.status, JSON.stringify(hook.body)).toBe(201);
        const { webhook_id: webhookId, secret } = hook.body as { webhook_id: string; secret: string };
        // Paused, the events queue up undelivered; the server (a dispatcher too) is gone before they are due.
        const paused = await call(server, key, 'PATCH', `/webhooks/${webhookId}`, { status: 'paused' });
        expect(paused.status, JSON.stringify(paused.body)).toBe(200);
        const bookingIds: string[] = [];
        for (let index = 0; index < COUNT; index++) {
          bookingIds.push((await book(server, key, resourceId, index)).booking_id);
        }
        expect(await server.stop()).toBe(0);
        expect(receiver.received).toHaveLength(0);

        started.push(...(await Promise.all([spawnWorker(env), spawnWorker(env)])));
        // Resume the subscription holding the outbox locked, until both workers' next claims wait on the
        // lock: on commit both claim in the same instant, from the same 30 due rows (more than a batch).
        gate = await database.connect();
        await gate.query('begin');
        await gate.query('lock table webhook_deliveries in access exclusive mode');
        await gate.query(`update webhook_endpoints set status = 'active'`);
        await waitForValue(
          'both workers waiting to claim',
          async () => {
            const [row] = await query<{ n: number }>(
              database,
              `select count(*)::int as n from pg_stat_activity
               where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
            );
            return row!.n >= 2 ? row!.n : undefined;
          },
          10_000,
        );
        await gate.query('commit');
        await gate.end();
        gate = undefined;

        await waitForValue(
          `${COUNT} deliveries recorded as succeeded`,
          async () => {
            const [row] = await query<{ n: number }>(
              database,
              `select count(*)::int as n from webhook_deliveries where status = 'succeeded'`,
            );
            return row!.n === COUNT ? true : undefined;
          },
          30_000,
          100,
        );
        // Both workers finish what they hold and exit: a duplicate still in flight has arrived by then.
        await Promise.all(started.map((worker) => worker.stop()));

        const seen = new Map<string, number>();
        for (const request of receiver.received) {
          const id = request.headers['webhook-id'] ?? '';
          seen.set(id, (seen.get(id) ?? 0) + 1);
        }
        const repeated = [...seen].filter(([, times]) => times !== 1);
        expect(repeated, 'webhook-ids received more than once').toEqual([]);
        expect(seen.size).toBe(COUNT);
        const verifier = new Webhook(secret);
        const delivered = receiver.received.map(
          (request) => (verifier.verify(request.body, request.headers) as any).data.booking_id as string,
        );
        expect(delivered.sort()).toEqual([...bookingIds].sort());
        const rows = await query<{ delivery_id: string; attempts: number; status: string }>(
          database,
          'select delivery_id, attempts, status from webhook_deliveries',
        );
        expect(rows).toHaveLength(COUNT);
        expect(rows.filter((row) => row.attempts !== 1 || row.status !== 'succeeded')).toEqual([]);
        expect(new Set(rows.map((row) => `msg_${row.delivery_id}`))).toEqual(new Set(seen.keys()));
      } finally {
        await cleanUp([
          async () => {
            await gate?.query('rollback');
            await gate?.end();
          },
          () => Promise.all(started.map((worker) => worker.stop())),
          () => stopAll(servers),
          () => receiver.stop(),
          () => database.drop(),
        ]);
      }
    });
  },
);

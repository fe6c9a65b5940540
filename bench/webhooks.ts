import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { Agent, request } from 'undici';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_POLL_INTERVAL_MS,
  WEBHOOK_DELIVERIES_CHANNEL,
  type WebhookDispatcherOptions,
} from '../src/jobs/webhook-dispatcher.js';
import { createBooking } from '../src/services/bookings/index.js';
import type { Actor } from '../src/services/context.js';
import { createWebhook, deleteWebhook, type WebhookDeps } from '../src/services/webhooks.js';
import type { BenchContext, BenchOutcome } from './context.js';
import { createResources, roundTheClock } from './fixtures.js';
import {
  dayAfterTomorrowUtc,
  log,
  median,
  recordStatements,
  seededRandom,
  statementSummary,
} from './support.js';

/**
 * Pending deliveries drained per measured run, and bare POSTs per baseline run: enough that both sides
 * measure steady throughput, not the dispatcher's first claim (a round trip of a 100–150 ms drain at 480).
 */
const DRAIN_COUNT = 2400;
const CYCLES = 3;
/** The dispatcher's default concurrency: how many deliveries it has in flight at once. */
const CONCURRENCY = DEFAULT_CONCURRENCY;
/** Bookings committed one at a time, the dispatcher running, for the latency figures. */
const LATENCY_SAMPLES = 150;
/** The dispatcher's default pollIntervalMs, as `sched serve` and `sched worker` run it. */
const DEFAULT_POLL_MS = DEFAULT_POLL_INTERVAL_MS;
/** A short poll, to split the latency into waiting for the poll and the rest. */
const SHORT_POLL_MS = 20;
/** No wait for the receiver may take longer than this. */
const WAIT_MS = 60_000;
const SLOT_MS = 30 * 60_000;
/** Bookings created at once while filling the outbox (not timed). */
const FILL_CONCURRENCY = 8;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** This process's CPU time (µs) and event-loop utilization from now until the returned function is called. */
function startUsage(): () => { cpuMicros: number; busy: number } {
  const cpu = process.cpuUsage();
  const loop = performance.eventLoopUtilization();
  return () => {
    const used = process.cpuUsage(cpu);
    return { cpuMicros: used.user + used.system, busy: performance.eventLoopUtilization(loop).utilization };
  };
}

/** Nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * A bare receiver on 127.0.0.1: reads the body, notes when it arrived and for which booking, and answers
 * 204 at once. Both sides of every comparison post to this one.
 */
class Receiver {
  /** Arrival (performance.now()) of the last request for each booking id. */
  readonly arrivals = new Map<string, number>();
  count = 0;
  lastArrival = 0;
  #waiter: { target: number; resolve: () => void } | undefined;
  readonly #server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const at = performance.now();
      try {
        const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          data?: { booking_id?: string };
        };
        if (payload.data?.booking_id) this.arrivals.set(payload.data.booking_id, at);
      } catch {
        // Counted all the same; a body that is not JSON is the sender's problem, not this bench's.
      }
      this.count++;
      this.lastArrival = at;
      res.writeHead(204).end();
      if (this.#waiter && this.count >= this.#waiter.target) this.#waiter.resolve();
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }

  reset(): void {
    this.arrivals.clear();
    this.count = 0;
    this.lastArrival = 0;
  }

  /** Resolves once `target` requests have arrived since the last reset; throws after WAIT_MS. */
  async reached(target: number, what: string): Promise<void> {
    if (this.count >= target) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => (this.#waiter = { target, resolve })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${what}: ${this.count} of ${target} requests within ${WAIT_MS} ms`)),
            WAIT_MS,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.#waiter = undefined;
    }
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * Webhook delivery on PostgreSQL, one subscription to a local receiver answering at once:
 * - throughput: a WebhookDispatcher (as `sched serve` builds it, poll 5 ms, CONCURRENCY in flight)
 *   drains DRAIN_COUNT pending deliveries of committed bookings, against a bare loop of undici POSTs of
 *   the same bodies, CONCURRENCY at a time; ABBA cycles, ratio = median of the per-cycle ratios.
 * - latency: from the return of createBooking (after COMMIT) to the receiver, with the dispatcher running
 *   continuously at its default poll, against a bare POST of the same body sent one at a time.
 */
export async function benchWebhooks(context: BenchContext): Promise<BenchOutcome> {
  // The app's own dependencies: its secret box seals the subscription's secret that the dispatcher opens.
  const sched = context.sched.deps;
  const db = context.database.db;
  const { clock, secretBox, guard } = sched;
  const deps: WebhookDeps = { db, clock, secretBox, guard };
  const actor: Actor = { organizationId: context.sched.organizationId, label: 'bench', scopes: ['admin'] };
  const problems: string[] = [];
  const details: string[] = [];
  const receiver = new Receiver();
  const url = await receiver.start();
  let webhookId: string | undefined;
  try {
    const [resourceId] = await createResources(context.sched, 1, () => roundTheClock('UTC'));
    const created = await createWebhook(deps, actor, { url, events: ['booking.created'] });
    webhookId = created.webhook_id;

    const firstSlot = dayAfterTomorrowUtc();
    let nextSlot = 0;
    const book = async () => {
      const start = firstSlot + nextSlot++ * SLOT_MS;
      return createBooking({ db, clock }, actor, {
        resource_ids: [resourceId!],
        start,
        end: start + SLOT_MS,
        title: 'Bench booking',
        attendees: [{ email: 'guest@example.com', name: 'Guest' }],
      });
    };
    /** Commits `count` bookings, FILL_CONCURRENCY at a time: one pending delivery each. */
    const fill = async (count: number) => {
      let left = count;
      await Promise.all(
        Array.from({ length: FILL_CONCURRENCY }, async () => {
          while (left > 0) {
            left--;
            await book();
          }
        }),
      );
    };
    const pendingCount = async () => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from webhook_deliveries where status = 'pending'`.execute(db);
      return rows[0]!.n;
    };
    const outcomes = new Map<string, number>();
    const dispatcher = (options: Partial<WebhookDispatcherOptions>) =>
      sched.webhookDispatcher({
        onOutcome: (outcome) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1),
        ...options,
      });

    // What one delivery costs in round trips: one batch of one, recorded statement by statement.
    await fill(1);
    const single = dispatcher({});
    try {
      const statements = await recordStatements(() => single.runOnce());
      details.push(
        `webhooks: one delivery alone, ${statements.length} statements: ${statements.map(statementSummary).join(', ')} ` +
          `(under load a claim serves many deliveries, and so does a recording statement)`,
      );
    } finally {
      await single.stop();
    }

    // Bodies for the baseline: the payloads the dispatcher sends, byte for byte.
    log(`webhooks: filling the outbox with ${DRAIN_COUNT} bookings`);
    await fill(DRAIN_COUNT);
    // Statistics, as autovacuum keeps them in any server running for a minute. The bench's tables are
    // new: never analyzed, the planner takes the outbox for a few rows and sorts every pending delivery
    // on each claim, until autovacuum happens to analyze it in the middle of some run.
    await sql`analyze webhook_deliveries, webhook_events, webhook_endpoints`.execute(db);
    const { rows: bodies } = await sql<{ payload: string }>`
      select e.payload from webhook_events e join webhook_deliveries d using (event_id)
      where d.status = 'pending' order by d.next_attempt_at`.execute(db);
    if (bodies.length !== DRAIN_COUNT)
      throw new Error(`expected ${DRAIN_COUNT} pending deliveries, found ${bodies.length}`);

    /** Per timed drain: its claims, its recording statements, and the outcomes these recorded. */
    const drainStatements: { claims: number; records: number }[] = [];
    /** Per timed run of each side: the process's CPU time and its event loop's utilization. */
    const drainUsage: { cpuMicros: number; busy: number }[] = [];
    const bareUsage: { cpuMicros: number; busy: number }[] = [];
    const drain = async (label: string): Promise<number> => {
      const pending = await pendingCount();
      if (pending !== DRAIN_COUNT)
        throw new Error(`${label}: ${pending} deliveries pending, not ${DRAIN_COUNT}`);
      outcomes.clear();
      receiver.reset();
      const running = dispatcher({ pollIntervalMs: 5 });
      let started = 0;
      let usage: { cpuMicros: number; busy: number } | undefined;
      const statements = await recordStatements(async () => {
        const used = startUsage();
        started = performance.now();
        try {
          running.start();
          await receiver.reached(DRAIN_COUNT, label);
          usage = used();
        } finally {
          await running.stop();
        }
      });
      if (usage) drainUsage.push(usage);
      drainStatements.push({
        claims: statements.filter((text) => text.startsWith('with due as')).length,
        records: statements.filter((text) => /^update webhook_deliveries d set status = v\.status/.test(text))
          .length,
      });
      const rate = (DRAIN_COUNT / (receiver.lastArrival - started)) * 1000;
      const left = await pendingCount();
      if (left !== 0 || outcomes.get('delivered') !== DRAIN_COUNT || receiver.count !== DRAIN_COUNT) {
        problems.push(
          `webhooks ${label}: ${receiver.count} requests, outcomes ${JSON.stringify([...outcomes])}, ${left} still pending`,
        );
      }
      log(`  webhooks ${label}: ${rate.toFixed(0)} deliveries/s`);
      return rate;
    };

    const bare = async (label: string): Promise<number> => {
      receiver.reset();
      const agent = new Agent();
      let next = 0;
      let unexpected = 0;
      const used = startUsage();
      const started = performance.now();
      try {
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next < DRAIN_COUNT) {
              const body = bodies[next++]!.payload;
              const response = await request(url, {
                method: 'POST',
                body,
                headers: { 'content-type': 'application/json' },
                dispatcher: agent,
              });
              await response.body.dump();
              if (response.statusCode !== 204) unexpected++;
            }
          }),
        );
        await receiver.reached(DRAIN_COUNT, label);
        bareUsage.push(used());
      } finally {
        await agent.close();
      }
      if (unexpected > 0) problems.push(`webhooks ${label}: ${unexpected} answers other than 204`);
      const rate = (DRAIN_COUNT / (receiver.lastArrival - started)) * 1000;
      log(`  webhooks ${label}: ${rate.toFixed(0)} POSTs/s`);
      return rate;
    };

    // Warm-up of each side (connections, JIT, the plans of the dispatcher's statements).
    await drain('warm-up');
    await bare('bare warm-up');
    const ours: number[] = [];
    const baseline: number[] = [];
    const cycleRatios: number[] = [];
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const rates: Record<'ours' | 'baseline', number[]> = { ours: [], baseline: [] };
      for (const which of ['ours', 'baseline', 'baseline', 'ours'] as const) {
        const label = `${which === 'ours' ? 'dispatcher' : 'bare'} cycle ${cycle}/${CYCLES}`;
        if (which === 'ours') {
          await fill(DRAIN_COUNT);
          rates.ours.push(await drain(label));
        } else {
          rates.baseline.push(await bare(label));
        }
      }
      const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
      cycleRatios.push(mean(rates.ours) / mean(rates.baseline));
      ours.push(...rates.ours);
      baseline.push(...rates.baseline);
    }

    // Latency: bookings committed one at a time at irregular intervals, the dispatcher polling throughout.
    const random = seededRandom(42);
    const latency = async (pollIntervalMs: number, notified = false): Promise<number[]> => {
      receiver.reset();
      outcomes.clear();
      const committed = new Map<string, number>();
      const running = dispatcher({ pollIntervalMs });
      // As `sched serve` runs it: woken by the delivery insert's NOTIFY, polling only as a fallback.
      const unlisten = notified
        ? await context.database.listen(WEBHOOK_DELIVERIES_CHANNEL, () => running.wake())
        : undefined;
      try {
        running.start();
        await sleep(2 * pollIntervalMs);
        for (let sample = 0; sample < LATENCY_SAMPLES; sample++) {
          const booking = await book();
          committed.set(booking.booking_id, performance.now());
          // 20 to 80 ms apart, uncorrelated with the poll.
          await sleep(20 + random() * 60);
        }
        await receiver.reached(LATENCY_SAMPLES, `latency at a ${pollIntervalMs} ms poll`);
      } finally {
        await unlisten?.();
        await running.stop();
      }
      const values: number[] = [];
      for (const [bookingId, at] of committed) {
        const arrived = receiver.arrivals.get(bookingId);
        if (arrived === undefined) problems.push(`webhooks: booking ${bookingId} never reached the receiver`);
        else values.push(arrived - at);
      }
      log(
        `  webhooks latency at a ${pollIntervalMs} ms poll: median ${median(values).toFixed(1)} ms, ` +
          `p95 ${percentile(values, 95).toFixed(1)} ms`,
      );
      return values;
    };
    log(
      `webhooks: latency of ${LATENCY_SAMPLES} bookings woken by NOTIFY, ${DEFAULT_POLL_MS} ms poll as fallback`,
    );
    const atDefault = await latency(DEFAULT_POLL_MS, true);
    log(`webhooks: latency of ${LATENCY_SAMPLES} bookings at a ${SHORT_POLL_MS} ms poll`);
    const atShort = await latency(SHORT_POLL_MS);

    // The floor: the same body POSTed the moment it is known, one at a time, to the same receiver.
    const bareLatency: number[] = [];
    const agent = new Agent();
    try {
      for (let sample = 0; sample < LATENCY_SAMPLES; sample++) {
        receiver.reset();
        const started = performance.now();
        const response = await request(url, {
          method: 'POST',
          body: bodies[sample % bodies.length]!.payload,
          headers: { 'content-type': 'application/json' },
          dispatcher: agent,
        });
        await response.body.dump();
        if (response.statusCode !== 204)
          problems.push(`webhooks bare latency: answered ${response.statusCode}`);
        bareLatency.push(receiver.lastArrival - started);
        await sleep(20 + random() * 60);
      }
    } finally {
      await agent.close();
    }

    const oursRate = median(ours);
    const bareRate = median(baseline);
    const timed = drainStatements.slice(1);
    details.push(
      `webhooks drain: ${DRAIN_COUNT} deliveries took ${median(timed.map((d) => d.claims))} claims and ` +
        `${median(timed.map((d) => d.records))} recording statements (median of the timed runs; ` +
        `${timed.map((d) => `${d.claims}+${d.records}`).join(', ')}), ${CONCURRENCY} in flight, more claimed ahead; ` +
        `${((1 / oursRate) * 1e6).toFixed(0)} µs a delivery against ${((1 / bareRate) * 1e6).toFixed(0)} µs a bare POST, ` +
        `on a pool of ${context.poolSize}`,
    );
    const timedUsage = drainUsage.slice(1);
    const timedBare = bareUsage.slice(1);
    const cpuEach = (runs: { cpuMicros: number }[]) => median(runs.map((run) => run.cpuMicros / DRAIN_COUNT));
    const busy = (runs: { busy: number }[]) => `${(median(runs.map((run) => run.busy)) * 100).toFixed(0)} %`;
    details.push(
      `webhooks CPU of this process (dispatcher or bare loop, and the receiver), median of the timed runs: ` +
        `${cpuEach(timedUsage).toFixed(0)} µs a delivery against ${cpuEach(timedBare).toFixed(0)} µs a bare POST; ` +
        `event loop busy ${busy(timedUsage)} of a drain, ${busy(timedBare)} of a bare run`,
    );
    const p50 = median(atDefault);
    const p95 = percentile(atDefault, 95);
    const shortP50 = median(atShort);
    const bareP50 = median(bareLatency);
    const bareP95 = percentile(bareLatency, 95);
    details.push(
      `webhooks latency, commit to receiver: woken by NOTIFY (as serve runs) median ${p50.toFixed(1)} ms, ` +
        `p95 ${p95.toFixed(1)} ms; at a ${SHORT_POLL_MS} ms poll median ${shortP50.toFixed(1)} ms, ` +
        `p95 ${percentile(atShort, 95).toFixed(1)} ms; a bare POST alone median ${bareP50.toFixed(1)} ms`,
    );
    return {
      rows: [
        {
          name: `webhook deliveries/s, ${DRAIN_COUNT} pending, ${CONCURRENCY} at once (vs bare POSTs)`,
          ours: oursRate,
          baseline: bareRate,
          unit: 'req/s',
          ratio: median(cycleRatios),
          aimKind: 'min',
          aim: 0.7,
          note: `ratio per ABBA cycle ${cycleRatios.map((ratio) => ratio.toFixed(2)).join(', ')}; pool ${context.poolSize}`,
        },
        {
          name: 'webhook commit → receiver, median (ms), NOTIFY wake-up (vs bare POST)',
          ours: p50,
          baseline: bareP50,
          unit: 'ms',
          aimKind: 'max',
          aim: 50,
          note: `added ${(p50 - bareP50).toFixed(1)} ms; ${LATENCY_SAMPLES} bookings 20–80 ms apart`,
        },
        {
          name: 'webhook commit → receiver, p95 (ms), NOTIFY wake-up (vs bare POST)',
          ours: p95,
          baseline: bareP95,
          unit: 'ms',
          aimKind: 'max',
          aim: 50,
          note: `added ${(p95 - bareP95).toFixed(1)} ms`,
        },
      ],
      problems,
      details,
    };
  } finally {
    try {
      if (webhookId) await deleteWebhook(deps, actor, webhookId);
    } finally {
      await receiver.stop();
    }
  }
}

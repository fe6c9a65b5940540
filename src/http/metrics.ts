import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

export type Metrics = {
  registry: Registry;
  bookingsCreated: Counter;
  bookingConflicts: Counter;
  webhookDeliveries: Counter<'outcome'>;
  calendarSyncs: Counter<'provider' | 'outcome'>;
  requestDurations: RequestDurations;
};

export function createMetrics(options: { processMetrics: boolean }): Metrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'sched_' });
  return {
    registry,
    requestDurations: new RequestDurations(),
    bookingsCreated: new Counter({
      name: 'sched_bookings_created_total',
      help: 'Bookings confirmed through the API',
      registers: [registry],
    }),
    bookingConflicts: new Counter({
      name: 'sched_booking_conflicts_total',
      help: 'Booking requests refused with SLOT_UNAVAILABLE',
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: 'sched_webhook_delivery_attempts_total',
      help: 'Webhook delivery attempts by outcome: delivered, failed (will retry), exhausted, gone',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    calendarSyncs: new Counter({
      name: 'sched_calendar_syncs_total',
      help: 'Calendar syncs run by the workers, by provider and outcome: ok, failed, skipped (already running)',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
  };
}

/** What the busy index reports: see src/services/busy-index.ts. */
export type BusyIndexFigures = {
  size: number;
  stats: { hits: number; fills: number; direct: number; invalidations: number; evictions: number };
};

/**
 * The busy index's figures, read at each scrape. An app built again on the same metrics (tests)
 * replaces the previous app's.
 */
export function registerBusyIndexMetrics(metrics: Metrics, index: BusyIndexFigures): void {
  const registry = metrics.registry;
  const counters = {
    sched_busy_index_reads_total:
      'Resources read for availability, by where: memory (kept), filled (read and kept), database (the index was not trusted)',
    sched_busy_index_invalidations_total: 'Notifications that dropped what was kept for a resource',
    sched_busy_index_evictions_total: 'Resources dropped to stay within the memory bound',
  } as const;
  for (const name of [...Object.keys(counters), 'sched_busy_index_intervals'])
    registry.removeSingleMetric(name);
  new Gauge({
    name: 'sched_busy_index_intervals',
    help: 'Busy intervals kept in memory by this process',
    registers: [registry],
    collect() {
      this.set(index.size);
    },
  });
  new Counter({
    name: 'sched_busy_index_reads_total',
    help: counters.sched_busy_index_reads_total,
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ source: 'memory' }, index.stats.hits);
      this.inc({ source: 'filled' }, index.stats.fills);
      this.inc({ source: 'database' }, index.stats.direct);
    },
  });
  new Counter({
    name: 'sched_busy_index_invalidations_total',
    help: counters.sched_busy_index_invalidations_total,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(index.stats.invalidations);
    },
  });
  new Counter({
    name: 'sched_busy_index_evictions_total',
    help: counters.sched_busy_index_evictions_total,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(index.stats.evictions);
    },
  });
}

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;
const DURATION = 'sched_http_request_duration_seconds';

type Series = { labels: string; buckets: number[]; sum: number; count: number };

/**
 * Request durations, counted by hand. prom-client's Histogram checks and hashes its labels on every
 * observation, which cost more than a whole /healthz answer; here a request is one Map lookup and a
 * few additions, and the text is built only when /metrics is scraped.
 */
export class RequestDurations {
  readonly #series = new Map<string, Series>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${status} ${route}`;
    let series = this.#series.get(key);
    if (!series) {
      const escaped = route.replaceAll('\\', '\\\\').replaceAll('"', '\\"');
      series = {
        labels: `method="${method}",route="${escaped}",status="${status}"`,
        buckets: BUCKETS.map(() => 0),
        sum: 0,
        count: 0,
      };
      this.#series.set(key, series);
    }
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) series.buckets[i]!++;
    series.sum += seconds;
    series.count++;
  }

  /** The Prometheus text exposition of this histogram. */
  render(): string {
    const lines = [
      `# HELP ${DURATION} HTTP request duration by route and status`,
      `# TYPE ${DURATION} histogram`,
    ];
    for (const series of this.#series.values()) {
      BUCKETS.forEach((le, i) =>
        lines.push(`${DURATION}_bucket{${series.labels},le="${le}"} ${series.buckets[i]}`),
      );
      lines.push(`${DURATION}_bucket{${series.labels},le="+Inf"} ${series.count}`);
      lines.push(`${DURATION}_sum{${series.labels}} ${series.sum}`);
      lines.push(`${DURATION}_count{${series.labels}} ${series.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

export function registerRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    // The route pattern, not the URL: ids in paths would make a label per object.
    metrics.requestDurations.observe(
      request.method,
      request.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
  });
}

/** Everything /metrics shows: the registry's metrics and the request histogram. */
export async function renderMetrics(metrics: Metrics): Promise<string> {
  return (await metrics.registry.metrics()) + metrics.requestDurations.render();
}

import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export type Metrics = {
  registry: Registry;
  bookingsCreated: Counter;
  bookingConflicts: Counter;
  webhookDeliveries: Counter<'outcome'>;
};

export function createMetrics(options: { processMetrics: boolean }): Metrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'sched_' });
  return {
    registry,
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
  };
}

export function registerRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  const duration = new Histogram({
    name: 'sched_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metrics.registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: ids in paths would make a label per object.
    const route = request.routeOptions.url ?? 'unmatched';
    duration.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}

import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { randomBytes, randomUUID } from 'node:crypto';
import { isValidLocalDate, isValidTimeZone, isValidWallTime, parseApiInstant } from '../domain/index.js';
import { OutboundGuard } from '../integrations/index.js';
import { SecretBox } from '../security/secret-box.js';
import type { Clock } from '../services/context.js';
import type { DatabaseHandle, DatabaseKind } from '../storage/open-database.js';
import type { Db } from '../storage/database.js';
import { registerAuth } from './auth.js';
import { registerIdempotency } from './idempotency.js';
import { registerInputGuard } from './input-guard.js';
import { createMetrics, type Metrics, registerBusyIndexMetrics, registerRequestMetrics } from './metrics.js';
import { errorHandler, notFoundHandler } from './problem-details.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { availabilityRoutes } from './routes/availability.js';
import { bookingRoutes } from './routes/bookings.js';
import { bookingSeriesRoutes } from './routes/booking-series.js';
import { holdRoutes } from './routes/holds.js';
import { bookingPageRoutes } from './routes/booking-pages.js';
import { DEFAULT_PUBLIC_RATE_LIMIT, publicRoutes } from './routes/public.js';
import type { TrustProxy } from '../config.js';
import { organizationRoutes } from './routes/organization.js';
import { operationsRoutes } from './routes/operations.js';
import { resourceRoutes } from './routes/resources.js';
import { webhookRoutes } from './routes/webhooks.js';
import { calendarRoutes } from './routes/calendars.js';
import { feedRoutes } from './routes/feeds.js';
import { hookRoutes } from './routes/hooks.js';
import { mcpRoutes } from '../mcp/http.js';
import { inlineParser, type CalendarParser, type Connectors } from '../calendar/index.js';
import { Problem, UUID_PATTERN } from './schemas.js';
import { BusyIndex, type BusyReader } from '../services/busy-index.js';

export type AppDeps = {
  db: Db;
  databaseKind: DatabaseKind;
  /**
   * LISTEN on the database, for what each process keeps in memory and must drop when another process
   * changes it; left out (tests of one app), nothing is kept across requests.
   */
  listen?: DatabaseHandle['listen'];
  clock: Clock;
  /** compose.ts passes the configured key; left out (tests, benchmarks), a key lives only in memory. */
  secretBox?: SecretBox;
  /** Left out, nothing internal may be reached. */
  outboundGuard?: OutboundGuard;
  logger?: FastifyBaseLogger | boolean;
  metrics?: Metrics;
  /** The calendar providers this server can connect to; left out, none. */
  connectors?: Connectors;
  /** Reads calendars off the event loop; left out, on the calling thread (yielding between objects). */
  parser?: CalendarParser;
  /** SCHED_PUBLIC_URL; left out, feed URLs are built from the request's host. */
  publicUrl?: string | undefined;
  /** Requests per minute a client address may make to /public/*; DEFAULT_PUBLIC_RATE_LIMIT when left out. */
  publicRateLimit?: number;
  /** Which proxies' X-Forwarded-For gives the client's address; none when left out. */
  trustProxy?: TrustProxy;
  /** How long a client may take to send a whole request (headers and body); REQUEST_TIMEOUT_MS when left out. */
  requestTimeoutMs?: number;
  /** How long a connection may stay silent; CONNECTION_TIMEOUT_MS when left out. */
  connectionTimeoutMs?: number;
};

/** A slow body (a trickle of bytes) is cut after this: 408, and the connection is closed. */
export const REQUEST_TIMEOUT_MS = 30_000;
/**
 * A silent socket is closed after this. Longer than any handler may think without writing (a sync
 * now waits on provider calls of up to 15 s each), since Node counts that silence too.
 */
export const CONNECTION_TIMEOUT_MS = 60_000;

export const BODY_LIMIT_BYTES = 1024 * 1024;

export type App = FastifyInstance;

/** A hop count trusts that many proxies nearest the server; addresses trust those proxies only. */
function trustProxyOption(
  trust: TrustProxy | undefined,
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (trust === undefined || trust === false) return false;
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return trust;
}

/** Builds the whole HTTP API without listening, so tests drive it through inject(). */
export async function buildApp(deps: AppDeps): Promise<App> {
  const requestTimeout = deps.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const app = Fastify({
    ...(typeof deps.logger === 'object' ? { loggerInstance: deps.logger } : { logger: deps.logger ?? false }),
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: trustProxyOption(deps.trustProxy),
    requestTimeout,
    connectionTimeout: deps.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS,
    // Node enforces the request timeout only when its server is created with it (Fastify sets it
    // afterwards), and looks for late requests every 30 s by default, which would double it: both are
    // given here. The headers must come within the request's time too.
    http: {
      requestTimeout,
      headersTimeout: Math.min(60_000, requestTimeout),
      connectionsCheckingInterval: Math.min(3_000, Math.max(50, Math.floor(requestTimeout / 10))),
    },
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    },
    ajv: {
      customOptions: {
        // Unknown fields are an error, never silently dropped.
        removeAdditional: false,
        // JSON types are strict: a string is never taken for a number, a boolean or a list. Query
        // strings are parsed by their schema's type before validation (input-guard.ts).
        coerceTypes: false,
        useDefaults: true,
        formats: {
          instant: (value: string) => parseApiInstant(value) !== null,
          'time-zone': (value: string) => isValidTimeZone(value),
          'local-date': (value: string) => isValidLocalDate(value),
          'wall-time': (value: string) => isValidWallTime(value),
        },
      },
      // ajv-formats' uuid also takes a `urn:uuid:` prefix, which PostgreSQL does not: only the canonical form.
      onCreate: (ajv) => {
        ajv.addFormat('uuid', UUID_PATTERN);
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const metrics = deps.metrics ?? createMetrics({ processMetrics: false });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addSchema(Problem);
  registerInputGuard(app);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Sched API',
        version: '1.0.0',
        description:
          'Bookings that never double-book, availability across time zones, and calendar sync. ' +
          'Errors are application/problem+json with a stable `code`. Every POST accepts `Idempotency-Key`. ' +
          'JSON types are strict (nothing is converted); control characters, instants outside the years ' +
          '1900–9999 and nesting deeper than 32 levels are a 400 naming the field; a POST or DELETE without ' +
          'a body accepts an empty body with any Content-Type; a body of another media type is a 415.',
      },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key: sk_...' } },
      },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  await registerAuth(app, { db: deps.db, databaseKind: deps.databaseKind, listen: deps.listen });
  const secretBox = deps.secretBox ?? new SecretBox(randomBytes(32));
  // Stored responses are sealed with the server's key, so a replay works after a restart and on
  // every process sharing the database.
  registerIdempotency(app, deps.db, deps.clock, secretBox);
  registerRequestMetrics(app, metrics);

  // Availability reads busy time from memory kept fresh through LISTEN, where the database can notify.
  const busyIndex = deps.listen ? new BusyIndex({ db: deps.db, listen: deps.listen }) : undefined;
  if (busyIndex) {
    await busyIndex.start();
    registerBusyIndexMetrics(metrics, busyIndex);
    app.addHook('onClose', () => busyIndex.close());
  }
  const routeDeps: RouteDeps = {
    db: deps.db,
    clock: deps.clock,
    metrics,
    databaseKind: deps.databaseKind,
    busy: busyIndex,
    publicUrl: deps.publicUrl,
  };
  await app.register(operationsRoutes(routeDeps));
  await app.register(apiKeyRoutes(routeDeps));
  await app.register(organizationRoutes(routeDeps));
  await app.register(resourceRoutes(routeDeps));
  await app.register(availabilityRoutes(routeDeps));
  await app.register(bookingRoutes(routeDeps));
  await app.register(bookingSeriesRoutes(routeDeps));
  await app.register(holdRoutes(routeDeps));
  await app.register(bookingPageRoutes(routeDeps));
  await app.register(
    publicRoutes({ ...routeDeps, rateLimit: deps.publicRateLimit ?? DEFAULT_PUBLIC_RATE_LIMIT }),
  );
  await app.register(
    webhookRoutes({
      db: deps.db,
      clock: deps.clock,
      secretBox,
      guard: deps.outboundGuard ?? new OutboundGuard({ allow: [] }),
    }),
  );
  const calendarDeps = {
    db: deps.db,
    clock: deps.clock,
    secretBox,
    connectors: deps.connectors ?? {},
    parser: deps.parser ?? inlineParser(),
    databaseKind: deps.databaseKind,
    publicUrl: deps.publicUrl,
  };
  await app.register(calendarRoutes(calendarDeps));
  await app.register(hookRoutes(calendarDeps));
  await app.register(feedRoutes({ db: deps.db, clock: deps.clock, publicUrl: deps.publicUrl }));
  await app.register(mcpRoutes({ db: deps.db }));
  await app.ready();
  return app;
}

export type RouteDeps = {
  db: Db;
  clock: Clock;
  metrics: Metrics;
  databaseKind: DatabaseKind;
  /** Busy time for availability and free/busy; left out, read from the database each time. */
  busy?: BusyReader | undefined;
  /** SCHED_PUBLIC_URL; left out, public URLs are built from the request's host. */
  publicUrl?: string | undefined;
};

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import { Type } from 'typebox';
import { listAuditLog } from '../../services/audit.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../build-app.js';
import { renderMetrics } from '../metrics.js';
import { commonErrors, PageQuery, ProblemRef, Strict } from '../schemas.js';

const AuditEntry = Type.Object({
  at: Type.String(),
  actor: Type.String(),
  action: Type.String(),
  target_type: Type.String(),
  target_id: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
});

export function operationsRoutes(deps: RouteDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/healthz',
      {
        schema: {
          tags: ['operations'],
          summary: 'Liveness: the process answers',
          security: [],
          response: { 200: Type.Object({ status: Type.Literal('ok') }) },
        },
      },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/readyz',
      {
        schema: {
          tags: ['operations'],
          summary: 'Readiness: the database answers',
          security: [],
          response: {
            200: Type.Object({ status: Type.Literal('ready'), database: Type.String() }),
            503: ProblemRef,
          },
        },
      },
      async (_request, reply) => {
        try {
          await sql`select 1`.execute(deps.db);
          return { status: 'ready' as const, database: deps.databaseKind };
        } catch {
          return reply.code(503).type('application/problem+json').send({
            type: 'about:blank',
            title: 'Service Unavailable',
            status: 503,
            detail: 'the database does not answer',
            code: 'NOT_READY',
          });
        }
      },
    );

    app.get(
      '/metrics',
      { schema: { tags: ['operations'], summary: 'Prometheus metrics', security: [], hide: false } },
      async (_request, reply) => {
        const body = await renderMetrics(deps.metrics);
        return reply.type(deps.metrics.registry.contentType).send(body);
      },
    );

    app.get(
      '/openapi.json',
      { schema: { tags: ['operations'], summary: 'This API as OpenAPI 3.1', security: [] } },
      async () => app.swagger(),
    );

    app.get(
      '/audit-log',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['operations'],
          summary: 'Every change made through the API, newest first',
          querystring: Strict({
            ...PageQuery,
            target_id: Type.Optional(Type.String({ maxLength: 200 })),
            action: Type.Optional(Type.String({ maxLength: 100 })),
          }),
          response: {
            200: Type.Object({
              entries: Type.Array(AuditEntry),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...commonErrors,
          },
        },
      },
      async (request) => listAuditLog(deps.db, actorOf(request), request.query),
    );
  };
}

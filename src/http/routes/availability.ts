import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parseInstant } from '../../domain/index.js';
import { getAvailability, getFreeBusy, parseResourceIds } from '../../services/availability.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../build-app.js';
import { commonErrors, Instant, Strict, TimeZone, Uuid } from '../schemas.js';

/** Schema validation has already checked the format; this only converts. */
export function instant(text: string): number {
  const value = parseInstant(text);
  if (value === null) throw new Error(`instant passed validation but does not parse: ${text}`);
  return value;
}

const Slot = Type.Object({
  start_time: Type.String(),
  end_time: Type.String(),
  resource_ids: Type.Array(Type.String()),
});
const Busy = Type.Object({
  start_time: Type.String(),
  end_time: Type.String(),
  source: Type.Union([Type.Literal('booking'), Type.Literal('calendar')]),
});

export function availabilityRoutes(deps: RouteDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/availability',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['availability'],
          summary: 'Free slots for one resource, all of several (collective) or any of several (round-robin)',
          querystring: Strict({
            resource_ids: Type.Array(Uuid, {
              minItems: 1,
              maxItems: 100,
              description: 'Resource ids, comma-separated (`A,B`) or repeated; at most 100',
            }),
            start: Instant,
            end: Instant,
            duration_minutes: Type.Integer({ minimum: 1, maximum: 1440 }),
            interval_minutes: Type.Optional(
              Type.Integer({ minimum: 1, maximum: 1440, description: 'Default: duration_minutes' }),
            ),
            mode: Type.Optional(Type.Union([Type.Literal('all'), Type.Literal('any')], { default: 'all' })),
            time_zone: Type.Optional(TimeZone),
          }),
          response: {
            200: Type.Object({ time_zone: Type.String(), slots: Type.Array(Slot) }),
            ...commonErrors,
          },
        },
      },
      async (request) => {
        const query = request.query;
        return getAvailability(deps, actorOf(request), {
          resourceIds: parseResourceIds(query.resource_ids),
          window: { start: instant(query.start), end: instant(query.end) },
          durationMinutes: query.duration_minutes,
          intervalMinutes: query.interval_minutes,
          mode: query.mode ?? 'all',
          timeZone: query.time_zone,
        });
      },
    );

    app.post(
      '/freebusy',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['availability'],
          summary: 'Merged busy intervals per resource',
          body: Strict({
            resource_ids: Type.Array(Uuid, { minItems: 1, maxItems: 100, uniqueItems: true }),
            start: Instant,
            end: Instant,
          }),
          response: {
            200: Type.Object({
              resources: Type.Record(Type.String(), Type.Object({ busy: Type.Array(Busy) })),
            }),
            ...commonErrors,
          },
        },
      },
      async (request) =>
        getFreeBusy(deps, actorOf(request), {
          resourceIds: parseResourceIds(request.body.resource_ids),
          window: { start: instant(request.body.start), end: instant(request.body.end) },
        }),
    );
  };
}

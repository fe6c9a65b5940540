import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  createHold,
  DEFAULT_HOLD_TTL_SECONDS,
  getHold,
  MAX_HOLD_TTL_SECONDS,
  MIN_HOLD_TTL_SECONDS,
  releaseHold,
} from '../../services/holds.js';
import { SchedError } from '../../services/errors.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../build-app.js';
import { commonErrors, Instant, ProblemRef, Strict, Uuid } from '../schemas.js';
import { instant } from './availability.js';
import { Assign } from './bookings.js';

const Hold = Type.Object({
  hold_id: Type.String(),
  resource_ids: Type.Array(Type.String()),
  start_time: Type.String(),
  end_time: Type.String(),
  expires_at: Type.String(),
  created_at: Type.String(),
});
const HoldParams = Strict({ hold_id: Uuid });

export function holdRoutes(deps: RouteDeps): FastifyPluginAsyncTypebox {
  const countConflict = (error: unknown) => {
    if (error instanceof SchedError && error.code === 'SLOT_UNAVAILABLE') deps.metrics.bookingConflicts.inc();
    throw error;
  };

  return async (app) => {
    app.post(
      '/holds',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['holds'],
          summary: 'Keep a time free for a few minutes; nobody else can book or hold it meanwhile',
          description:
            'The same checks as a booking (schedule, calendar events, notice, horizon, other bookings ' +
            'and holds), the same 409 `SLOT_UNAVAILABLE`. POST /bookings with `hold_id` turns it into ' +
            'the booking; once `expires_at` passes it blocks nothing.',
          body: Strict({
            resource_ids: Type.Array(Uuid, { minItems: 1, maxItems: 100, uniqueItems: true }),
            start_time: Instant,
            end_time: Instant,
            assign: Type.Optional(Assign),
            ttl_seconds: Type.Optional(
              Type.Integer({
                minimum: MIN_HOLD_TTL_SECONDS,
                maximum: MAX_HOLD_TTL_SECONDS,
                description: `How long the hold lives, in seconds (default ${DEFAULT_HOLD_TTL_SECONDS})`,
              }),
            ),
          }),
          response: { 201: Hold, ...commonErrors, 409: ProblemRef, 422: ProblemRef },
        },
      },
      async (request, reply) => {
        const { start_time, end_time, resource_ids, ...rest } = request.body;
        const hold = await createHold(deps, actorOf(request), {
          ...rest,
          resource_ids: resource_ids.map((id) => id.toLowerCase()),
          start: instant(start_time),
          end: instant(end_time),
        }).catch(countConflict);
        return reply.code(201).send(hold);
      },
    );

    app.get(
      '/holds/:hold_id',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['holds'],
          summary: 'A live hold; an expired, released or consumed one is a 404',
          params: HoldParams,
          response: { 200: Hold, ...commonErrors },
        },
      },
      async (request) => getHold(deps, actorOf(request), request.params.hold_id.toLowerCase()),
    );

    app.delete(
      '/holds/:hold_id',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['holds'],
          summary: 'Release a hold at once',
          params: HoldParams,
          response: { 204: Type.Null(), ...commonErrors },
        },
      },
      async (request, reply) => {
        await releaseHold(deps, actorOf(request), request.params.hold_id.toLowerCase());
        return reply.code(204).send(null);
      },
    );
  };
}

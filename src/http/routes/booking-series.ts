import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { cancelBookingSeries, getBookingSeries } from '../../services/bookings/index.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../build-app.js';
import { commonErrors, Instant, Strict, Uuid } from '../schemas.js';
import { instant } from './availability.js';
import { Series } from './bookings.js';

const SeriesParams = Strict({ series_id: Uuid });

/** Recurring bookings made with POST /bookings and `recurrence`: read a series, cancel it from an occurrence on. */
export function bookingSeriesRoutes(deps: RouteDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/booking-series/:series_id',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['bookings'],
          summary: 'A recurring booking: its rule and every occurrence, by start time',
          description: "Another organization's series is a 404 `SERIES_NOT_FOUND`.",
          params: SeriesParams,
          response: { 200: Series, ...commonErrors },
        },
      },
      async (request) => getBookingSeries(deps.db, actorOf(request), request.params.series_id.toLowerCase()),
    );

    app.post(
      '/booking-series/:series_id/cancel',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['bookings'],
          summary:
            'Cancel the occurrence starting at `from` and every later one (all when `from` is left out)',
          description:
            'Each cancelled occurrence emits `booking.cancelled` and is removed from connected calendars. ' +
            'Cancelling again changes nothing; rejected occurrences are left as they are.',
          params: SeriesParams,
          body: Strict({
            from: Type.Optional({
              ...Instant,
              description: 'Occurrences starting at or after this instant are cancelled',
            }),
            reason: Type.Optional(Type.String({ maxLength: 1000 })),
          }),
          response: { 200: Series, ...commonErrors },
        },
        // A bare POST (no body) cancels the whole series.
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) =>
        cancelBookingSeries(deps, actorOf(request), request.params.series_id.toLowerCase(), {
          from: request.body.from === undefined ? undefined : instant(request.body.from),
          reason: request.body.reason,
        }),
    );
  };
}

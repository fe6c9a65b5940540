import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  cancelBooking,
  createBooking,
  createBookingSeries,
  decideBooking,
  getBooking,
  listBookings,
  updateBooking,
} from '../../services/bookings/index.js';
import { SchedError } from '../../services/errors.js';
import { MAX_RECURRENCE_INTERVAL, MAX_SERIES_OCCURRENCES } from '../../domain/booking-recurrence.js';
import { WEEKDAYS } from '../../domain/index.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../build-app.js';
import { commonErrors, Email, Instant, PageQuery, ProblemRef, Strict, Uuid } from '../schemas.js';
import { instant } from './availability.js';

const Attendee = Strict({ email: Email, name: Type.Optional(Type.String({ maxLength: 200 })) });
const Status = Type.Union([
  Type.Literal('pending'),
  Type.Literal('confirmed'),
  Type.Literal('cancelled'),
  Type.Literal('rejected'),
]);
export const Assign = Type.Union([Type.Literal('all'), Type.Literal('one')], {
  description:
    '`all` (default) books every resource; `one` books exactly one free resource of `resource_ids`, ' +
    'the one booked least recently (ties: fewest confirmed bookings in the last 30 days, then id)',
});
export const Booking = Type.Object({
  booking_id: Type.String(),
  status: Status,
  resource_ids: Type.Array(Type.String()),
  start_time: Type.String(),
  end_time: Type.String(),
  title: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  attendees: Type.Array(Type.Object({ email: Type.String(), name: Type.Optional(Type.String()) })),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  cancel_reason: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
  series_id: Type.Union([Type.String(), Type.Null()], {
    description: 'The series this booking is an occurrence of (booked with `recurrence`); null otherwise',
  }),
});
const Frequency = Type.Union([Type.Literal('daily'), Type.Literal('weekly'), Type.Literal('monthly')]);
const WeekdayName = Type.Union(WEEKDAYS.map((day) => Type.Literal(day)));
export const RecurrenceBody = Strict(
  {
    frequency: Frequency,
    interval: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_RECURRENCE_INTERVAL,
        description: 'Every n days, weeks or months (1)',
      }),
    ),
    count: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_SERIES_OCCURRENCES,
        description: 'How many occurrences, the first included; exactly one of count and until',
      }),
    ),
    until: Type.Optional({
      ...Instant,
      description: `The last instant an occurrence may start at (inclusive); at most ${MAX_SERIES_OCCURRENCES} occurrences`,
    }),
    by_weekday: Type.Optional(
      Type.Array(WeekdayName, {
        minItems: 1,
        maxItems: 7,
        uniqueItems: true,
        description:
          "Weekly only: the days of each week (the start's weekday when left out); must include it",
      }),
    ),
  },
  {
    description:
      "Repeat the booking: every occurrence at the first one's local wall-clock time in the first resource's " +
      'time zone, all booked or none (a 409 lists each unavailable occurrence in `occurrences`)',
  },
);
const StoredRecurrence = Type.Object({
  frequency: Frequency,
  interval: Type.Integer(),
  count: Type.Union([Type.Integer(), Type.Null()]),
  until: Type.Union([Type.String(), Type.Null()]),
  by_weekday: Type.Union([Type.Array(Type.String()), Type.Null()]),
});
export const Series = Type.Object({
  series_id: Type.String(),
  recurrence: StoredRecurrence,
  time_zone: Type.String({ description: 'The zone whose wall clock every occurrence keeps' }),
  bookings: Type.Array(Booking),
});
const BookingParams = Strict({ booking_id: Uuid });
const Editable = {
  title: Type.String({ minLength: 1, maxLength: 500 }),
  description: Type.Union([Type.String({ maxLength: 10_000 }), Type.Null()]),
  attendees: Type.Array(Attendee, { maxItems: 200 }),
  metadata: Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), {
    maxProperties: 50,
    description: 'Your own key-value data, returned as given',
  }),
  ignore_availability: Type.Boolean({
    description:
      'Skip the schedule, notice, horizon, buffer and calendar checks; a booking still never overlaps another',
  }),
};
const ResourceIds = Type.Array(Uuid, { minItems: 1, maxItems: 100, uniqueItems: true });
const unavailable = { 409: ProblemRef, 422: ProblemRef };

export function bookingRoutes(deps: RouteDeps): FastifyPluginAsyncTypebox {
  const countConflict = (error: unknown) => {
    if (error instanceof SchedError && error.code === 'SLOT_UNAVAILABLE') deps.metrics.bookingConflicts.inc();
    throw error;
  };

  return async (app) => {
    app.post(
      '/bookings',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['bookings'],
          summary: 'Book one or more resources; never overlaps another confirmed booking',
          body: Strict({
            resource_ids: ResourceIds,
            start_time: Instant,
            end_time: Instant,
            title: Editable.title,
            description: Type.Optional(Editable.description),
            attendees: Type.Optional(Editable.attendees),
            metadata: Type.Optional(Editable.metadata),
            ignore_availability: Type.Optional(Editable.ignore_availability),
            status: Type.Optional(
              Type.Union([Type.Literal('pending'), Type.Literal('confirmed')], {
                description:
                  '`pending` awaits POST /bookings/{booking_id}/confirm or /reject and blocks the time meanwhile',
              }),
            ),
            assign: Type.Optional(Assign),
            hold_id: Type.Optional({
              ...Uuid,
              description:
                'Turn this hold into the booking: the same times and resources (or, with `assign: "one"`, a pool including the held one)',
            }),
            recurrence: Type.Optional(RecurrenceBody),
          }),
          response: {
            201: Type.Union([Booking, Series], {
              description: 'The booking, or with `recurrence` the series with every occurrence',
            }),
            ...commonErrors,
            ...unavailable,
          },
        },
      },
      async (request, reply) => {
        const { start_time, end_time, resource_ids, hold_id, recurrence, ...rest } = request.body;
        const input = {
          ...rest,
          ...(hold_id !== undefined ? { hold_id: hold_id.toLowerCase() } : {}),
          resource_ids: resource_ids.map((id) => id.toLowerCase()),
          start: instant(start_time),
          end: instant(end_time),
        };
        if (recurrence !== undefined) {
          const { until, ...rule } = recurrence;
          const series = await createBookingSeries(deps, actorOf(request), input, {
            ...rule,
            ...(until !== undefined ? { until: instant(until) } : {}),
          }).catch(countConflict);
          deps.metrics.bookingsCreated.inc(series.bookings.length);
          return reply.code(201).send(series);
        }
        const booking = await createBooking(deps, actorOf(request), input).catch(countConflict);
        deps.metrics.bookingsCreated.inc();
        return reply.code(201).send(booking);
      },
    );

    app.get(
      '/bookings',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['bookings'],
          summary: 'List bookings overlapping a window, by start time',
          querystring: Strict({
            ...PageQuery,
            resource_id: Type.Optional(Uuid),
            start: Type.Optional(Instant),
            end: Type.Optional(Instant),
            status: Type.Optional(Status),
          }),
          response: {
            200: Type.Object({
              bookings: Type.Array(Booking),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...commonErrors,
          },
        },
      },
      async (request) => {
        const { start, end, ...rest } = request.query;
        return listBookings(deps.db, actorOf(request), {
          ...rest,
          start: start === undefined ? undefined : instant(start),
          end: end === undefined ? undefined : instant(end),
        });
      },
    );

    app.get(
      '/bookings/:booking_id',
      {
        config: { scope: 'read' },
        schema: { tags: ['bookings'], params: BookingParams, response: { 200: Booking, ...commonErrors } },
      },
      async (request) => getBooking(deps.db, actorOf(request), request.params.booking_id),
    );

    app.patch(
      '/bookings/:booking_id',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['bookings'],
          summary: 'Reschedule or edit; the same rules as booking, and the id never changes',
          params: BookingParams,
          body: Strict({
            resource_ids: Type.Optional(ResourceIds),
            start_time: Type.Optional(Instant),
            end_time: Type.Optional(Instant),
            title: Type.Optional(Editable.title),
            description: Type.Optional(Editable.description),
            attendees: Type.Optional(Editable.attendees),
            metadata: Type.Optional(Editable.metadata),
            ignore_availability: Type.Optional(Editable.ignore_availability),
          }),
          response: { 200: Booking, ...commonErrors, ...unavailable },
        },
      },
      async (request) => {
        const { start_time, end_time, resource_ids, ...rest } = request.body;
        return updateBooking(deps, actorOf(request), request.params.booking_id, {
          ...rest,
          ...(resource_ids ? { resource_ids: resource_ids.map((id) => id.toLowerCase()) } : {}),
          ...(start_time !== undefined ? { start: instant(start_time) } : {}),
          ...(end_time !== undefined ? { end: instant(end_time) } : {}),
        }).catch(countConflict);
      },
    );

    app.post(
      '/bookings/:booking_id/cancel',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['bookings'],
          summary: 'Cancel a booking; its slot is free again. Cancelling twice changes nothing.',
          params: BookingParams,
          body: Strict({ reason: Type.Optional(Type.String({ maxLength: 1000 })) }),
          response: { 200: Booking, ...commonErrors, ...unavailable },
        },
        // A cancel with no body at all is common (and what most HTTP clients send for a bare POST).
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) =>
        cancelBooking(deps, actorOf(request), request.params.booking_id, request.body.reason),
    );

    app.post(
      '/bookings/:booking_id/confirm',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['bookings'],
          summary: 'Confirm a pending booking. Confirming a confirmed one changes nothing.',
          description: 'Any other status is a 409 `BOOKING_NOT_PENDING`. Emits `booking.confirmed`.',
          params: BookingParams,
          body: Strict({}),
          response: { 200: Booking, ...commonErrors, ...unavailable },
        },
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) =>
        decideBooking(deps, actorOf(request), request.params.booking_id, { to: 'confirmed' }),
    );

    app.post(
      '/bookings/:booking_id/reject',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['bookings'],
          summary: 'Reject a pending booking; its time is free again. Rejecting twice changes nothing.',
          description:
            'Any status other than pending or rejected is a 409 `BOOKING_NOT_PENDING`. The reason is ' +
            'kept as `cancel_reason`. Emits `booking.rejected`.',
          params: BookingParams,
          body: Strict({ reason: Type.Optional(Type.String({ maxLength: 1000 })) }),
          response: { 200: Booking, ...commonErrors, ...unavailable },
        },
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) =>
        decideBooking(deps, actorOf(request), request.params.booking_id, {
          to: 'rejected',
          reason: request.body.reason,
        }),
    );
  };
}

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import {
  createBookingPage,
  DEFAULT_HOLD_MINUTES,
  DEFAULT_WINDOW_DAYS,
  deleteBookingPage,
  getBookingPage,
  listBookingPages,
  type PageUrls,
  updateBookingPage,
} from '../../services/booking-pages.js';
import type { Actor } from '../../services/context.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../build-app.js';
import { publicBase } from '../rate-limit.js';
import { commonErrors, PageQuery, ProblemRef, Strict, Uuid } from '../schemas.js';
import { Assign } from './bookings.js';
import { Slug } from './organization.js';

const QuestionKind = Type.Union([
  Type.Literal('text'),
  Type.Literal('long_text'),
  Type.Literal('email'),
  Type.Literal('phone'),
  Type.Literal('select'),
  Type.Literal('checkbox'),
]);
const Question = Strict({
  key: Type.String({
    pattern: '^[a-z][a-z0-9_]{0,39}$',
    description:
      'Lowercase letters, digits and `_`, starting with a letter; the answer is sent as answers.<key>',
  }),
  label: Type.String({ minLength: 1, maxLength: 200 }),
  kind: QuestionKind,
  required: Type.Optional(Type.Boolean()),
  options: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
      minItems: 1,
      maxItems: 50,
      description: 'The choices of a `select` question, and only of one',
    }),
  ),
});
const LocationKind = Type.Union([Type.Literal('in_person'), Type.Literal('phone'), Type.Literal('video')]);
const Location = Strict({
  kind: LocationKind,
  value: Type.Optional(
    Type.String({
      maxLength: 500,
      description: 'The address, number or link; shown to the attendee once booked, never on the public page',
    }),
  ),
});
const Fields = {
  slug: Slug,
  title: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Union([Type.String({ maxLength: 5000 }), Type.Null()]),
  durations_minutes: Type.Array(Type.Integer({ minimum: 5, maximum: 720 }), {
    minItems: 1,
    maxItems: 10,
    description: 'The lengths an attendee may choose; the first is the default',
  }),
  resource_ids: Type.Array(Uuid, { minItems: 1, maxItems: 100, uniqueItems: true }),
  assign: Assign,
  interval_minutes: Type.Union([Type.Integer({ minimum: 5, maximum: 720 }), Type.Null()], {
    description: 'Step between offered start times; default (null) the chosen duration',
  }),
  location: Type.Union([Location, Type.Null()]),
  questions: Type.Array(Question, { maxItems: 30 }),
  requires_confirmation: Type.Boolean({
    description:
      'Bookings arrive `pending` and wait for POST /bookings/{id}/confirm; they block the time meanwhile',
  }),
  hold_minutes: Type.Integer({
    minimum: 1,
    maximum: 60,
    description: `How long a public hold keeps a slot while the attendee fills the form (default ${DEFAULT_HOLD_MINUTES})`,
  }),
  window_days: Type.Integer({
    minimum: 1,
    maximum: 365,
    description: `How many days ahead the page offers slots (default ${DEFAULT_WINDOW_DAYS}); the resources' own horizon still applies`,
  }),
  published: Type.Boolean({ description: 'An unpublished page is a 404 on every public endpoint' }),
};
const BookingPage = Type.Object({
  booking_page_id: Type.String(),
  slug: Type.String(),
  url: Type.String({ description: 'The public booking page' }),
  title: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  durations_minutes: Type.Array(Type.Integer()),
  resource_ids: Type.Array(Type.String()),
  assign: Type.String(),
  interval_minutes: Type.Union([Type.Integer(), Type.Null()]),
  location: Type.Union([
    Type.Object({ kind: Type.String(), value: Type.Optional(Type.String()) }),
    Type.Null(),
  ]),
  questions: Type.Array(
    Type.Object({
      key: Type.String(),
      label: Type.String(),
      kind: Type.String(),
      required: Type.Boolean(),
      options: Type.Optional(Type.Array(Type.String())),
    }),
  ),
  requires_confirmation: Type.Boolean(),
  hold_minutes: Type.Integer(),
  window_days: Type.Integer(),
  published: Type.Boolean(),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const PageParams = Strict({ booking_page_id: Uuid });
const tags = ['booking pages'];

const lower = (ids: string[]) => ids.map((id) => id.toLowerCase());

export function bookingPageRoutes(deps: RouteDeps): FastifyPluginAsyncTypebox {
  /** Public URLs are built with the organization's current slug, so a new slug shows at once. */
  const urlsFor = async (request: FastifyRequest, actor: Actor): Promise<PageUrls> => {
    const org = await deps.db
      .selectFrom('organizations')
      .select('slug')
      .where('organization_id', '=', actor.organizationId)
      .executeTakeFirstOrThrow();
    return { base: publicBase(deps.publicUrl, request), organizationSlug: org.slug };
  };

  return async (app) => {
    app.post(
      '/booking-pages',
      {
        config: { scope: 'write' },
        schema: {
          tags,
          summary: 'Create a booking page (an event type) the public can book through',
          description:
            'Schedules, buffers, notice and horizon come from the resources; a page adds nothing that ' +
            'weakens them. A slug another page of the organization has is a 409 `SLUG_TAKEN`.',
          body: Strict({
            slug: Fields.slug,
            title: Fields.title,
            description: Type.Optional(Fields.description),
            durations_minutes: Fields.durations_minutes,
            resource_ids: Fields.resource_ids,
            assign: Type.Optional(Fields.assign),
            interval_minutes: Type.Optional(Fields.interval_minutes),
            location: Type.Optional(Fields.location),
            questions: Type.Optional(Fields.questions),
            requires_confirmation: Type.Optional(Fields.requires_confirmation),
            hold_minutes: Type.Optional(Fields.hold_minutes),
            window_days: Type.Optional(Fields.window_days),
            published: Type.Optional(Fields.published),
          }),
          response: { 201: BookingPage, ...commonErrors, 409: ProblemRef, 422: ProblemRef },
        },
      },
      async (request, reply) => {
        const actor = actorOf(request);
        const body = request.body;
        const page = await createBookingPage(
          deps,
          actor,
          { ...body, resource_ids: lower(body.resource_ids) },
          await urlsFor(request, actor),
        );
        return reply.code(201).send(page);
      },
    );

    app.get(
      '/booking-pages',
      {
        config: { scope: 'read' },
        schema: {
          tags,
          summary: "The organization's booking pages, oldest first",
          querystring: Strict({ ...PageQuery }),
          response: {
            200: Type.Object({
              booking_pages: Type.Array(BookingPage),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...commonErrors,
          },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        return listBookingPages(deps.db, actor, request.query, await urlsFor(request, actor));
      },
    );

    app.get(
      '/booking-pages/:booking_page_id',
      {
        config: { scope: 'read' },
        schema: { tags, params: PageParams, response: { 200: BookingPage, ...commonErrors } },
      },
      async (request) => {
        const actor = actorOf(request);
        return getBookingPage(
          deps.db,
          actor,
          request.params.booking_page_id.toLowerCase(),
          await urlsFor(request, actor),
        );
      },
    );

    app.patch(
      '/booking-pages/:booking_page_id',
      {
        config: { scope: 'write' },
        schema: {
          tags,
          summary: 'Change a booking page; bookings already made keep their time',
          params: PageParams,
          body: Strict({
            slug: Type.Optional(Fields.slug),
            title: Type.Optional(Fields.title),
            description: Type.Optional(Fields.description),
            durations_minutes: Type.Optional(Fields.durations_minutes),
            resource_ids: Type.Optional(Fields.resource_ids),
            assign: Type.Optional(Fields.assign),
            interval_minutes: Type.Optional(Fields.interval_minutes),
            location: Type.Optional(Fields.location),
            questions: Type.Optional(Fields.questions),
            requires_confirmation: Type.Optional(Fields.requires_confirmation),
            hold_minutes: Type.Optional(Fields.hold_minutes),
            window_days: Type.Optional(Fields.window_days),
            published: Type.Optional(Fields.published),
          }),
          response: { 200: BookingPage, ...commonErrors, 409: ProblemRef },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        const { resource_ids, ...rest } = request.body;
        return updateBookingPage(
          deps,
          actor,
          request.params.booking_page_id.toLowerCase(),
          { ...rest, ...(resource_ids ? { resource_ids: lower(resource_ids) } : {}) },
          await urlsFor(request, actor),
        );
      },
    );

    app.delete(
      '/booking-pages/:booking_page_id',
      {
        config: { scope: 'write' },
        schema: {
          tags,
          summary: 'Delete a booking page; its bookings stay, and their manage links keep working',
          params: PageParams,
          response: { 204: Type.Null(), ...commonErrors },
        },
      },
      async (request, reply) => {
        await deleteBookingPage(deps.db, actorOf(request), request.params.booking_page_id.toLowerCase());
        return reply.code(204).send(null);
      },
    );
  };
}

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import {
  findManagedBooking,
  liveManaged,
  findPublicPage,
  type ManagedBooking,
  manageView,
  MAX_PUBLIC_WINDOW_DAYS,
  publicBook,
  publicCancel,
  publicHold,
  publicPageView,
  type PublicPage,
  publicReschedule,
  publicSlots,
} from '../../services/public-booking.js';
import type { RouteDeps } from '../build-app.js';
import { publicBase, registerRateLimit } from '../rate-limit.js';
import { Email, Instant, ProblemRef, Strict, TimeZone, Uuid } from '../schemas.js';
import { instant } from './availability.js';

/** Requests per minute one client address may make to /public/* (SCHED_PUBLIC_RATE_LIMIT). */
export const DEFAULT_PUBLIC_RATE_LIMIT = 120;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A public POST that takes part in Idempotency-Key, for the organization its URL names. */
    publicIdempotency?: boolean;
  }
}

const tags = ['public'];
const PageParams = Strict({
  org_slug: Type.String({ minLength: 1, maxLength: 63 }),
  page_slug: Type.String({ minLength: 1, maxLength: 63 }),
});
const TokenParams = Strict({ token: Type.String({ minLength: 1, maxLength: 100 }) });
const errors = { 400: ProblemRef, 404: ProblemRef, 429: ProblemRef };
const writeErrors = { ...errors, 409: ProblemRef, 422: ProblemRef };
const Branding = Type.Object({
  logo_url: Type.Union([Type.String(), Type.Null()]),
  accent_color: Type.Union([Type.String(), Type.Null()]),
});
const PublicQuestion = Type.Object({
  key: Type.String(),
  label: Type.String(),
  kind: Type.String(),
  required: Type.Boolean(),
  options: Type.Optional(Type.Array(Type.String())),
});
const PublicPageSchema = Type.Object({
  title: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  durations_minutes: Type.Array(Type.Integer()),
  location: Type.Union([Type.Object({ kind: Type.String() }), Type.Null()]),
  questions: Type.Array(PublicQuestion),
  time_zone: Type.String({ description: "The organization's zone, the default for slots" }),
  requires_confirmation: Type.Boolean(),
  window_days: Type.Integer(),
  organization: Type.Object({ name: Type.String(), slug: Type.String(), branding: Branding }),
});
const ManageSchema = Type.Object({
  booking_id: Type.String(),
  status: Type.String(),
  start_time: Type.String(),
  end_time: Type.String(),
  duration_minutes: Type.Integer(),
  time_zone: Type.String({ description: "The attendee's zone, as given when booking" }),
  title: Type.Union([Type.String(), Type.Null()]),
  location: Type.Union([
    Type.Object({ kind: Type.String(), value: Type.Union([Type.String(), Type.Null()]) }),
    Type.Null(),
  ]),
  attendee: Type.Union([
    Type.Object({ name: Type.Union([Type.String(), Type.Null()]), email: Type.String() }),
    Type.Null(),
  ]),
  booking_page: Type.Union([
    Type.Object({
      slug: Type.String(),
      title: Type.String(),
      organization: Type.Object({ name: Type.String(), slug: Type.String() }),
    }),
    Type.Null(),
  ]),
});
const Duration = Type.Integer({
  minimum: 1,
  maximum: 1440,
  description: "One of the page's durations_minutes",
});
const AnswerValue = Type.Union([Type.String({ maxLength: 10_000 }), Type.Boolean()]);

/**
 * The endpoints anyone may call: a published booking page, its slots, holds and bookings, and the
 * attendee's manage link. No API key; the organization acts through the page, audited as
 * `public:booking_page:<id>`. Every answer is cut down to what the public may know: no resource ids,
 * no names of round-robin members, no other bookings, no calendar event titles.
 */
export function publicRoutes(deps: RouteDeps & { rateLimit: number }): FastifyPluginAsyncTypebox {
  const pages = new WeakMap<FastifyRequest, PublicPage>();
  const managed = new WeakMap<FastifyRequest, ManagedBooking>();

  /** Resolves the page (and its organization as the actor) before idempotency and the handler. */
  const loadPage = async (request: FastifyRequest) => {
    const { org_slug, page_slug } = request.params as { org_slug: string; page_slug: string };
    const target = await findPublicPage(deps.db, org_slug, page_slug);
    pages.set(request, target);
    request.actor = target.actor;
  };
  const loadManaged = async (request: FastifyRequest) => {
    const found = await findManagedBooking(deps.db, (request.params as { token: string }).token);
    managed.set(request, found);
    request.actor = found.actor;
  };
  const pageOf = (request: FastifyRequest) => pages.get(request)!;
  const managedOf = (request: FastifyRequest) => liveManaged(managed.get(request)!);

  return async (app) => {
    await registerRateLimit(app, 'too many requests from this address', {
      max: deps.rateLimit,
      timeWindow: 60_000,
    });

    app.get(
      '/public/:org_slug/:page_slug',
      {
        preHandler: loadPage,
        schema: {
          tags,
          security: [],
          summary: 'A published booking page: what it offers and asks, never who hosts it',
          params: PageParams,
          response: { 200: PublicPageSchema, ...errors },
        },
      },
      async (request) => publicPageView(pageOf(request)),
    );

    app.get(
      '/public/:org_slug/:page_slug/slots',
      {
        preHandler: loadPage,
        schema: {
          tags,
          security: [],
          summary: "The page's free start times",
          description:
            "Computed by the same engine as GET /availability with the page's duration and interval, " +
            `inside the page's window (now to window_days ahead); at most ${MAX_PUBLIC_WINDOW_DAYS} days per request.`,
          params: PageParams,
          querystring: Strict({
            start: Instant,
            end: Instant,
            duration_minutes: Type.Optional(Duration),
            time_zone: Type.Optional(TimeZone),
          }),
          response: {
            200: Type.Object({
              time_zone: Type.String(),
              slots: Type.Array(Type.Object({ start_time: Type.String(), end_time: Type.String() })),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const { start, end, ...rest } = request.query;
        return publicSlots(deps, pageOf(request), { ...rest, start: instant(start), end: instant(end) });
      },
    );

    app.post(
      '/public/:org_slug/:page_slug/holds',
      {
        preHandler: loadPage,
        config: { publicIdempotency: true },
        schema: {
          tags,
          security: [],
          summary: "Keep an offered slot for the page's hold_minutes while the attendee fills the form",
          params: PageParams,
          body: Strict({ start_time: Instant, duration_minutes: Duration }),
          response: {
            201: Type.Object({ hold_id: Type.String(), expires_at: Type.String() }),
            ...writeErrors,
          },
        },
      },
      async (request, reply) => {
        const hold = await publicHold(deps, pageOf(request), {
          start: instant(request.body.start_time),
          duration_minutes: request.body.duration_minutes,
        });
        return reply.code(201).send(hold);
      },
    );

    app.post(
      '/public/:org_slug/:page_slug/bookings',
      {
        preHandler: loadPage,
        config: { publicIdempotency: true },
        schema: {
          tags,
          security: [],
          summary: 'Book an offered slot (or a hold of this page) as an attendee',
          description:
            'Required answers are checked (400 naming `answers.<key>`). A page that requires confirmation ' +
            "makes a `pending` booking. `manage_url` is the attendee's secret link to reschedule or cancel; " +
            'it is shown only here.',
          params: PageParams,
          body: Strict({
            start_time: Instant,
            duration_minutes: Duration,
            hold_id: Type.Optional(Uuid),
            attendee: Strict({
              name: Type.String({ minLength: 1, maxLength: 200 }),
              email: Email,
              time_zone: TimeZone,
            }),
            answers: Type.Optional(
              Type.Record(Type.String({ maxLength: 40 }), AnswerValue, { maxProperties: 30 }),
            ),
            guests: Type.Optional(Type.Array(Email, { maxItems: 10, uniqueItems: true })),
          }),
          response: {
            201: Type.Object({
              booking_id: Type.String(),
              status: Type.String(),
              start_time: Type.String(),
              end_time: Type.String(),
              manage_url: Type.String(),
            }),
            ...writeErrors,
          },
        },
      },
      async (request, reply) => {
        const { start_time, hold_id, ...rest } = request.body;
        const booking = await publicBook(
          deps,
          pageOf(request),
          {
            ...rest,
            start: instant(start_time),
            ...(hold_id !== undefined ? { hold_id: hold_id.toLowerCase() } : {}),
          },
          publicBase(deps.publicUrl, request),
        );
        return reply.code(201).send(booking);
      },
    );

    app.get(
      '/public/manage/:token',
      {
        preHandler: loadManaged,
        schema: {
          tags,
          security: [],
          summary: "The booking as its attendee may see it; a cancelled booking's link is a 404",
          params: TokenParams,
          response: { 200: ManageSchema, ...errors },
        },
      },
      async (request) => manageView(managedOf(request)),
    );

    app.post(
      '/public/manage/:token/reschedule',
      {
        preHandler: loadManaged,
        config: { publicIdempotency: true },
        schema: {
          tags,
          security: [],
          summary: 'Move the booking to another offered slot of its page, same length',
          params: TokenParams,
          body: Strict({ start_time: Instant }),
          response: { 200: ManageSchema, ...writeErrors },
        },
      },
      async (request) => publicReschedule(deps, managedOf(request), instant(request.body.start_time)),
    );

    app.post(
      '/public/manage/:token/cancel',
      {
        preHandler: loadManaged,
        config: { publicIdempotency: true },
        schema: {
          tags,
          security: [],
          summary: 'Cancel the booking; the link dies with it',
          params: TokenParams,
          body: Strict({ reason: Type.Optional(Type.String({ maxLength: 1000 })) }),
          response: { 200: ManageSchema, ...writeErrors },
        },
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) => publicCancel(deps, managedOf(request), request.body.reason),
    );
  };
}

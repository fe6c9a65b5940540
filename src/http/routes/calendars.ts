import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  connectCalendar,
  disconnectCalendar,
  findConnection,
  connectionView,
  listConnections,
  PROVIDER_DISPLAY_NAMES,
  updateConnection,
  type CalendarDeps,
} from '../../calendar/index.js';
import { listCalendarEvents } from '../../calendar/index.js';
import { listConflicts, resolveConflict } from '../../calendar/index.js';
import { syncConnection } from '../../calendar/index.js';
import { actorOf } from '../auth.js';
import { commonErrors, Instant, PageQuery, ProblemRef, Strict, Uuid } from '../schemas.js';
import { instant } from './availability.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

const Provider = Type.Union(
  [Type.Literal('google'), Type.Literal('outlook'), Type.Literal('caldav'), Type.Literal('ics')],
  { description: 'google, outlook, caldav or ics' },
);
const Direction = Type.Union([Type.Literal('two_way'), Type.Literal('push'), Type.Literal('pull')]);
const Policy = Type.Union([
  Type.Literal('sched_wins'),
  Type.Literal('provider_wins'),
  Type.Literal('last_writer_wins'),
  Type.Literal('manual'),
]);
const SyncInput = Strict(
  {
    direction: Type.Optional(Direction),
    frequency_minutes: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 1440, description: '0 = manual and after booking changes only' }),
    ),
    realtime: Type.Optional(
      Type.Boolean({ description: 'Use push notifications where the provider has them' }),
    ),
    conflict_policy: Type.Optional(Policy),
    blocks_availability: Type.Optional(Type.Boolean()),
  },
  {
    description:
      'Defaults: two_way (pull for ics), every 15 minutes, realtime, sched_wins, blocks availability',
  },
);
const Sync = Type.Object({
  direction: Direction,
  frequency_minutes: Type.Integer(),
  realtime: Type.Boolean(),
  conflict_policy: Policy,
  blocks_availability: Type.Boolean(),
});
const Connection = Type.Object({
  connection_id: Type.String(),
  provider: Provider,
  resource_id: Type.String(),
  calendar_id: Type.String({
    description: 'The provider’s calendar id: the collection URL for CalDAV, a digest of the URL for ICS',
  }),
  status: Type.Union([
    Type.Literal('active'),
    Type.Literal('pending_authorization'),
    Type.Literal('reauth_required'),
    Type.Literal('error'),
  ]),
  sync: Sync,
  last_synced_at: Nullable(Type.String()),
  last_error: Nullable(Type.String()),
  warnings: Type.Array(Type.Object({ uid: Type.String(), reason: Type.String() }), {
    description:
      'Events the last sync could not read, or read only in part (the first 50), with their UID and why',
  }),
  warning_count: Type.Integer({ description: 'How many events have warnings in all' }),
  calendar_warnings: Type.Array(Type.String(), {
    description:
      'What the last full read noticed about the calendar as a whole: components ignored, duplicate UIDs, time zones that did not parse (at most 20)',
  }),
  display_name: Nullable(Type.String()),
  push: Type.Object(
    {
      status: Type.Union([Type.Literal('on'), Type.Literal('off'), Type.Literal('unavailable')]),
      reason: Nullable(Type.String()),
    },
    {
      description:
        'Whether changes at the provider arrive by push; polling at frequency_minutes goes on either way',
    },
  ),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const Url = Type.String({ minLength: 1, maxLength: 2000 });
const ConnectBody = Strict(
  {
    resource_id: Uuid,
    url: Type.Optional(Url),
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    calendar_id: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    oauth_token: Type.Optional(Type.String({ minLength: 1, maxLength: 8000 })),
    refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 8000 })),
    expires_at: Type.Optional(Instant),
    sync: Type.Optional(SyncInput),
  },
  {
    description:
      'caldav: url (server root or calendar collection), username, password (iCloud: an app-specific ' +
      'password), calendar_id? (collection URL or display name). ics: url (https, or webcal).',
  },
);
const CalendarParams = Strict({
  provider: Provider,
  calendar_id: Type.String({ minLength: 1, maxLength: 2000 }),
});
const ResourceQuery = { resource_id: Type.Optional(Uuid) };
const Stats = Type.Object({
  fetched: Type.Integer(),
  created: Type.Integer(),
  updated: Type.Integer(),
  deleted: Type.Integer(),
  pushed: Type.Integer(),
  conflicts: Type.Integer(),
});
const Event = Type.Object({
  event_id: Type.String(),
  start_time: Type.String(),
  end_time: Type.String(),
  title: Nullable(Type.String()),
  all_day: Type.Boolean(),
  status: Type.String(),
  transparency: Type.String(),
  recurring_event_id: Nullable(Type.String()),
  booking_id: Nullable(Type.String()),
  updated_at: Type.String(),
});
const Conflict = Type.Object({
  conflict_id: Type.String(),
  booking_id: Type.String(),
  connection_id: Type.String(),
  sched_version: Type.Record(Type.String(), Type.Unknown()),
  provider_version: Type.Record(Type.String(), Type.Unknown()),
  detected_at: Type.String(),
  status: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
  resolution: Nullable(Type.Union([Type.Literal('sched'), Type.Literal('provider')])),
  resolved_at: Nullable(Type.String()),
});
const providerErrors = { 502: ProblemRef };
const Authorization = Type.Object({
  authorization_url: Type.String(),
  state: Type.String(),
  connection_id: Type.String({ description: 'The connection, pending_authorization until the callback' }),
  expires_at: Type.String(),
});
const tags = ['calendars'];

export function calendarRoutes(deps: CalendarDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/calendars/:provider/connect',
      {
        config: { scope: 'write' },
        schema: {
          tags,
          summary:
            'Connect a calendar to a resource. Google and Outlook without oauth_token answer 200 with an ' +
            'authorization_url to open; GET /oauth/{provider}/callback then finishes the connection.',
          params: Strict({ provider: Provider }),
          body: ConnectBody,
          response: {
            200: Authorization,
            201: Connection,
            ...commonErrors,
            409: ProblemRef,
            ...providerErrors,
          },
        },
      },
      async (request, reply) => {
        const { sync, ...rest } = request.body;
        const result = await connectCalendar(
          deps,
          actorOf(request),
          request.params.provider,
          { ...rest, ...(sync ? { sync } : {}) },
          { publicUrl: `${request.protocol}://${request.host}` },
        );
        return 'authorization_url' in result ? reply.code(200).send(result) : reply.code(201).send(result);
      },
    );

    app.get(
      '/calendars',
      {
        config: { scope: 'read' },
        schema: {
          tags,
          querystring: Strict(ResourceQuery),
          response: { 200: Type.Object({ calendars: Type.Array(Connection) }), ...commonErrors },
        },
      },
      async (request) => listConnections(deps, actorOf(request), request.query),
    );

    app.get(
      '/calendars/:provider/:calendar_id',
      {
        config: { scope: 'read' },
        schema: {
          tags,
          params: CalendarParams,
          querystring: Strict(ResourceQuery),
          response: { 200: Connection, ...commonErrors, 409: ProblemRef },
        },
      },
      async (request) =>
        connectionView(
          await findConnection(
            deps.db,
            actorOf(request),
            request.params.provider,
            request.params.calendar_id,
            request.query.resource_id,
          ),
          deps.publicUrl,
        ),
    );

    app.patch(
      '/calendars/:provider/:calendar_id',
      {
        config: { scope: 'write' },
        schema: {
          tags,
          params: CalendarParams,
          querystring: Strict(ResourceQuery),
          body: Strict({ sync: SyncInput }),
          response: { 200: Connection, ...commonErrors, 409: ProblemRef },
        },
      },
      async (request) =>
        updateConnection(
          deps,
          actorOf(request),
          request.params.provider,
          request.params.calendar_id,
          request.body,
          request.query.resource_id,
        ),
    );

    app.delete(
      '/calendars/:provider/:calendar_id',
      {
        config: { scope: 'write' },
        schema: {
          tags,
          summary: 'Disconnect: stored credentials and imported events are erased; bookings stay',
          params: CalendarParams,
          querystring: Strict(ResourceQuery),
          response: { 200: Type.Object({ message: Type.String() }), ...commonErrors, 409: ProblemRef },
        },
      },
      async (request) =>
        disconnectCalendar(
          deps,
          actorOf(request),
          request.params.provider,
          request.params.calendar_id,
          request.query.resource_id,
        ),
    );

    app.get(
      '/calendars/:provider/:calendar_id/events',
      {
        config: { scope: 'read' },
        schema: {
          tags,
          summary: 'Events of the calendar in a window (at most 366 days), series expanded into occurrences',
          params: CalendarParams,
          querystring: Strict({ start: Instant, end: Instant, ...ResourceQuery }),
          response: { 200: Type.Object({ events: Type.Array(Event) }), ...commonErrors, 409: ProblemRef },
        },
      },
      async (request) =>
        listCalendarEvents(
          deps.db,
          actorOf(request),
          request.params.provider,
          request.params.calendar_id,
          { start: instant(request.query.start), end: instant(request.query.end) },
          request.query.resource_id,
        ),
    );

    app.post(
      '/calendars/:provider/:calendar_id/sync',
      {
        config: { scope: 'write' },
        schema: {
          tags,
          summary: 'Synchronize now: push pending bookings, then pull changes',
          params: CalendarParams,
          querystring: Strict(ResourceQuery),
          response: {
            200: Type.Object({ message: Type.String(), stats: Stats }),
            ...commonErrors,
            409: ProblemRef,
            ...providerErrors,
          },
        },
      },
      async (request) => {
        const { provider, calendar_id } = request.params;
        const connection = await findConnection(
          deps.db,
          actorOf(request),
          provider,
          calendar_id,
          request.query.resource_id,
        );
        const stats = await syncConnection(deps, connection.connection_id, { wait: true });
        // Disconnected while it ran: the sync stopped where it noticed, and nothing of it is kept.
        await findConnection(deps.db, actorOf(request), provider, connection.connection_id);
        return { message: `${PROVIDER_DISPLAY_NAMES[provider]} synchronized successfully.`, stats };
      },
    );

    app.get(
      '/conflicts',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['conflicts'],
          querystring: Strict({
            ...PageQuery,
            status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('resolved')])),
          }),
          response: {
            200: Type.Object({ conflicts: Type.Array(Conflict), next_cursor: Nullable(Type.String()) }),
            ...commonErrors,
          },
        },
      },
      async (request) => listConflicts(deps, actorOf(request), request.query),
    );

    app.post(
      '/conflicts/:conflict_id/resolve',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['conflicts'],
          summary:
            'keep "sched" writes the booking to the calendar again; keep "provider" changes the booking',
          params: Strict({ conflict_id: Uuid }),
          body: Strict({ keep: Type.Union([Type.Literal('sched'), Type.Literal('provider')]) }),
          response: { 200: Conflict, ...commonErrors, 409: ProblemRef },
        },
      },
      async (request) =>
        resolveConflict(deps, actorOf(request), request.params.conflict_id, request.body.keep),
    );
  };
}

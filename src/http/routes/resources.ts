import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  createResource,
  deleteResource,
  getResource,
  listResources,
  updateResource,
} from '../../services/resources.js';
import { getSchedule, patchSchedule, putSchedule } from '../../services/schedules.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../build-app.js';
import {
  commonErrors,
  Email,
  LocalDate,
  PageQuery,
  ProblemRef,
  Strict,
  TimeZone,
  Uuid,
  WallTime,
} from '../schemas.js';

const Kind = Type.Union([Type.Literal('person'), Type.Literal('room'), Type.Literal('equipment')]);
const Name = Type.String({ minLength: 1, maxLength: 200 });
const Resource = Type.Object({
  resource_id: Type.String(),
  name: Type.String(),
  kind: Kind,
  time_zone: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const ResourceParams = Strict({ resource_id: Uuid });

const WallInterval = Type.Tuple([WallTime, WallTime], { description: '[start, end) wall-clock times' });
const DayHours = Type.Array(WallInterval, { maxItems: 24 });
const Weekly = Strict({
  mon: Type.Optional(DayHours),
  tue: Type.Optional(DayHours),
  wed: Type.Optional(DayHours),
  thu: Type.Optional(DayHours),
  fri: Type.Optional(DayHours),
  sat: Type.Optional(DayHours),
  sun: Type.Optional(DayHours),
});
const Override = Strict({ date: LocalDate, intervals: DayHours });
const ScheduleFields = {
  time_zone: Type.Optional(TimeZone),
  weekly: Type.Optional(Weekly),
  overrides: Type.Optional(Type.Array(Override, { maxItems: 1000 })),
  buffer_before_minutes: Type.Optional(Type.Integer({ minimum: 0, maximum: 1440 })),
  buffer_after_minutes: Type.Optional(Type.Integer({ minimum: 0, maximum: 1440 })),
  minimum_notice_minutes: Type.Optional(Type.Integer({ minimum: 0, maximum: 525_600 })),
  booking_horizon_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
};
const Schedule = Type.Object({
  resource_id: Type.String(),
  time_zone: Type.String(),
  weekly: Type.Record(Type.String(), Type.Array(Type.Tuple([Type.String(), Type.String()]))),
  overrides: Type.Array(
    Type.Object({ date: Type.String(), intervals: Type.Array(Type.Tuple([Type.String(), Type.String()])) }),
  ),
  buffer_before_minutes: Type.Integer(),
  buffer_after_minutes: Type.Integer(),
  minimum_notice_minutes: Type.Integer(),
  booking_horizon_days: Type.Integer(),
  is_default: Type.Boolean({ description: 'true while no schedule has been set (Mon–Fri 09:00–17:00)' }),
});

export function resourceRoutes(deps: RouteDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/resources',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['resources'],
          summary: 'Create a person, room or piece of equipment',
          body: Strict({
            name: Name,
            kind: Kind,
            time_zone: TimeZone,
            email: Type.Optional(Type.Union([Email, Type.Null()])),
          }),
          response: { 201: Resource, ...commonErrors, 409: ProblemRef, 422: ProblemRef },
        },
      },
      async (request, reply) =>
        reply.code(201).send(await createResource(deps.db, actorOf(request), request.body)),
    );

    app.get(
      '/resources',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['resources'],
          summary: 'List resources, oldest first',
          querystring: Strict({ ...PageQuery, kind: Type.Optional(Kind) }),
          response: {
            200: Type.Object({
              resources: Type.Array(Resource),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...commonErrors,
          },
        },
      },
      async (request) => listResources(deps.db, actorOf(request), request.query),
    );

    app.get(
      '/resources/:resource_id',
      {
        config: { scope: 'read' },
        schema: { tags: ['resources'], params: ResourceParams, response: { 200: Resource, ...commonErrors } },
      },
      async (request) => getResource(deps.db, actorOf(request), request.params.resource_id),
    );

    app.patch(
      '/resources/:resource_id',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['resources'],
          params: ResourceParams,
          body: Strict({
            name: Type.Optional(Name),
            kind: Type.Optional(Kind),
            time_zone: Type.Optional(TimeZone),
            email: Type.Optional(Type.Union([Email, Type.Null()])),
          }),
          response: { 200: Resource, ...commonErrors },
        },
      },
      async (request) => updateResource(deps, actorOf(request), request.params.resource_id, request.body),
    );

    app.delete(
      '/resources/:resource_id',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['resources'],
          summary: 'Delete a resource; its existing bookings are kept',
          params: ResourceParams,
          response: { 204: Type.Null(), ...commonErrors },
        },
      },
      async (request, reply) => {
        await deleteResource(deps, actorOf(request), request.params.resource_id);
        return reply.code(204).send(null);
      },
    );

    app.put(
      '/resources/:resource_id/schedule',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['schedules'],
          summary: 'Set when a resource can be booked (replaces the whole schedule)',
          description:
            '`weekly` is required (400 naming it when absent): a PUT replaces every field, and the fields ' +
            'left out take their defaults. ' +
            'To change some fields only, use PATCH.',
          params: ResourceParams,
          body: Strict(ScheduleFields),
          response: { 200: Schedule, ...commonErrors },
        },
      },
      async (request) => putSchedule(deps, actorOf(request), request.params.resource_id, request.body),
    );

    app.patch(
      '/resources/:resource_id/schedule',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['schedules'],
          summary: 'Change some fields of the schedule; the others keep their values',
          params: ResourceParams,
          body: Strict(ScheduleFields),
          response: { 200: Schedule, ...commonErrors },
        },
      },
      async (request) => patchSchedule(deps, actorOf(request), request.params.resource_id, request.body),
    );

    app.get(
      '/resources/:resource_id/schedule',
      {
        config: { scope: 'read' },
        schema: { tags: ['schedules'], params: ResourceParams, response: { 200: Schedule, ...commonErrors } },
      },
      async (request) => getSchedule(deps.db, actorOf(request), request.params.resource_id),
    );
  };
}

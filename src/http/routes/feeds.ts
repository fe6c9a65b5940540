import { publicBase } from '../rate-limit.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { Type } from 'typebox';
import {
  createFeed,
  deleteFeed,
  FEED_CANCELLED_DAYS,
  FEED_MAX_EVENTS,
  FEED_PAST_DAYS,
  type FeedDeps,
  listFeeds,
  renderResourceFeed,
} from '../../services/feeds.js';
import { ErrorCode, SchedError } from '../../services/errors.js';
import { actorOf } from '../auth.js';
import { commonErrors, PageQuery, ProblemRef, Strict, Uuid } from '../schemas.js';

const Feed = Type.Object({
  feed_id: Type.String(),
  resource_id: Type.String(),
  created_at: Type.String(),
});
const CreatedFeed = Type.Object({
  ...Feed.properties,
  url: Type.String({
    description:
      'The subscription URL. It holds the secret, which is shown only in this response and stored only as a hash.',
  }),
});
const ResourceParams = Strict({ resource_id: Uuid });
const tags = ['feeds'];

const FEED_CONTENTS =
  `The feed holds the resource's confirmed bookings from ${FEED_PAST_DAYS} days ago onwards, and ` +
  `those cancelled in the last ${FEED_CANCELLED_DAYS} days as STATUS:CANCELLED so subscribed calendars ` +
  `remove them; at most ${FEED_MAX_EVENTS} events, the earliest first. Each event carries the booking's ` +
  'title and description, never its attendees.';

/** Where no public URL is configured, the address the caller used is the best guess at one. */
function withPublicUrl(deps: FeedDeps, request: FastifyRequest): FeedDeps {
  return deps.publicUrl ? deps : { ...deps, publicUrl: publicBase(undefined, request) };
}

/** A strong validator of the exact bytes sent. */
function etagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url')}"`;
}

/** RFC 9110 §13.1.2: weak comparison, a list of tags, or `*`. */
function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === etag);
}

export function feedRoutes(deps: FeedDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/resources/:resource_id/feeds',
      {
        config: { scope: 'write' },
        schema: {
          tags,
          summary: 'Make a secret, revocable iCalendar (ICS) URL of the resource’s bookings',
          description:
            'Anyone holding the URL can read the feed without an API key, so share it as you would a ' +
            `password; revoke it with DELETE. ${FEED_CONTENTS}`,
          params: ResourceParams,
          response: { 201: CreatedFeed, ...commonErrors, 409: ProblemRef, 422: ProblemRef },
        },
      },
      async (request, reply) =>
        reply
          .code(201)
          .send(await createFeed(withPublicUrl(deps, request), actorOf(request), request.params.resource_id)),
    );

    app.get(
      '/resources/:resource_id/feeds',
      {
        config: { scope: 'read' },
        schema: {
          tags,
          summary: 'The resource’s active feeds, oldest first; their URLs are not shown again',
          params: ResourceParams,
          querystring: Strict(PageQuery),
          response: {
            200: Type.Object({
              feeds: Type.Array(Feed),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...commonErrors,
          },
        },
      },
      async (request) => listFeeds(deps, actorOf(request), request.params.resource_id, request.query),
    );

    app.delete(
      '/resources/:resource_id/feeds/:feed_id',
      {
        config: { scope: 'write' },
        schema: {
          tags,
          summary: 'Revoke a feed: its URL answers 404 from now on',
          params: Strict({ resource_id: Uuid, feed_id: Uuid }),
          response: { 204: Type.Null(), ...commonErrors },
        },
      },
      async (request, reply) => {
        await deleteFeed(deps, actorOf(request), request.params.resource_id, request.params.feed_id);
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/feeds/:secret.ics',
      {
        schema: {
          tags,
          summary: 'The feed itself, for calendar apps to subscribe to (no API key: the URL is the secret)',
          description:
            `${FEED_CONTENTS} Answers with an ETag and honours If-None-Match with 304; clients may ` +
            'cache it for 5 minutes. An unknown or revoked URL is a 404.',
          security: [],
          params: Strict({ secret: Type.String({ maxLength: 200 }) }),
          response: {
            200: {
              description: 'RFC 5545 iCalendar, CRLF line ends',
              content: { 'text/calendar': { schema: Type.String() } },
            },
            304: { description: 'Unchanged since the ETag given in If-None-Match', type: 'null' },
            404: ProblemRef,
          },
        },
      },
      async (request, reply) => {
        const feed = await renderResourceFeed(deps, request.params.secret);
        if (!feed) {
          throw new SchedError(ErrorCode.FEED_NOT_FOUND, 'no feed at this URL; it may have been revoked');
        }
        const etag = etagOf(feed.ics);
        reply.header('etag', etag).header('cache-control', 'private, max-age=300');
        if (matchesIfNoneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send(null);
        return reply.type('text/calendar; charset=utf-8').send(feed.ics);
      },
    );
  };
}

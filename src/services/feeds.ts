import { createHash, randomBytes } from 'node:crypto';
import type { OutgoingEvent } from '../ical/outgoing-event.js';
import { renderFeed } from '../ical/render-event.js';
import { BUSY_STATUSES, calendarStatus, type Db } from '../storage/database.js';
import { loadSeriesForResource } from './outgoing-series.js';
import { recordAudit } from './audit.js';
import { MAX_BOOKING_DAYS } from './bookings/index.js';
import type { Actor, ServiceDeps } from './context.js';
import { ErrorCode, SchedError } from './errors.js';
import { afterKey, finishPage, pageOf, timeKey } from './pagination.js';
import { findResource } from './resources.js';

export type FeedDeps = ServiceDeps & {
  /**
   * The address clients reach this server at (https://sched.example.com). Feed URLs are built on it;
   * routes fill it in from the request when it is not configured, and without it a URL is a bare path.
   */
  publicUrl?: string | undefined;
};

const DAY_MS = 24 * 60 * 60 * 1000;
/** Bookings that ended longer ago than this are left out: subscribers rarely look back further. */
export const FEED_PAST_DAYS = 90;
/** A cancelled booking stays this long as STATUS:CANCELLED, long enough for every subscriber to see it. */
export const FEED_CANCELLED_DAYS = 30;
/** Calendar clients choke on huge feeds; the earliest events are kept. */
export const FEED_MAX_EVENTS = 5000;

/** 32 random bytes as base64url, the only form a feed secret takes. */
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export type FeedView = { feed_id: string; resource_id: string; created_at: string };

type FeedRow = { feed_id: string; resource_id: string; created_at: Date };

function feedView(row: FeedRow): FeedView {
  return { feed_id: row.feed_id, resource_id: row.resource_id, created_at: row.created_at.toISOString() };
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function feedUrl(deps: FeedDeps, secret: string): string {
  const base = (deps.publicUrl ?? '').replace(/\/+$/, '');
  return `${base}/feeds/${secret}.ics`;
}

/** The URL holds the only copy of the secret: it is shown in this answer and never again. */
export async function createFeed(
  deps: FeedDeps,
  actor: Actor,
  resourceId: string,
): Promise<FeedView & { url: string }> {
  const secret = randomBytes(32).toString('base64url');
  return deps.db.transaction().execute(async (trx) => {
    await findResource(trx, actor, resourceId);
    const row = await trx
      .insertInto('resource_feeds')
      .values({
        organization_id: actor.organizationId,
        resource_id: resourceId,
        secret_hash: hashSecret(secret),
      })
      .returning(['feed_id', 'resource_id', 'created_at'])
      .executeTakeFirstOrThrow();
    const view = feedView(row);
    await recordAudit(trx, actor, {
      action: 'feed.created',
      targetType: 'feed',
      targetId: row.feed_id,
      details: { feed: view },
    });
    return { ...view, url: feedUrl(deps, secret) };
  });
}

/** Active feeds only: a revoked feed is gone for the caller, as a deleted resource is. */
export async function listFeeds(
  deps: FeedDeps,
  actor: Actor,
  resourceId: string,
  query: { limit?: number; cursor?: string },
): Promise<{ feeds: FeedView[]; next_cursor: string | null }> {
  await findResource(deps.db, actor, resourceId);
  const page = pageOf(query);
  let select = deps.db
    .selectFrom('resource_feeds')
    .select(['feed_id', 'resource_id', 'created_at'])
    .select(timeKey('created_at').as('cursor_time'))
    .where('resource_id', '=', resourceId)
    .where('organization_id', '=', actor.organizationId)
    .where('revoked_at', 'is', null);
  if (page.after) select = select.where(afterKey('created_at', 'feed_id', page.after));
  const rows = await select
    .orderBy('created_at')
    .orderBy('feed_id')
    .limit(page.limit + 1)
    .execute();
  const { items, nextCursor } = finishPage(rows, page.limit, (row) => row.feed_id);
  return { feeds: items.map(feedView), next_cursor: nextCursor };
}

/** Revokes at once: the next request for the URL is a 404. The row stays for the audit trail. */
export async function deleteFeed(deps: FeedDeps, actor: Actor, resourceId: string, feedId: string) {
  await deps.db.transaction().execute(async (trx) => {
    await findResource(trx, actor, resourceId);
    const revoked = await trx
      .updateTable('resource_feeds')
      .set({ revoked_at: new Date(deps.clock()) })
      .where('feed_id', '=', feedId)
      .where('resource_id', '=', resourceId)
      .where('organization_id', '=', actor.organizationId)
      .where('revoked_at', 'is', null)
      .returning('feed_id')
      .executeTakeFirst();
    if (!revoked)
      throw new SchedError(ErrorCode.FEED_NOT_FOUND, `no feed ${feedId} for resource ${resourceId}`);
    await recordAudit(trx, actor, {
      action: 'feed.revoked',
      targetType: 'feed',
      targetId: feedId,
      details: { resource_id: resourceId },
    });
  });
}

/**
 * The feed behind a secret, as iCalendar text; null when the secret is unknown, revoked, or its
 * resource deleted, so all three look the same from outside.
 */
export async function renderResourceFeed(
  deps: FeedDeps,
  secret: string,
): Promise<{ ics: string; resourceName: string } | null> {
  if (!SECRET_PATTERN.test(secret)) return null;
  const feed = await deps.db
    .selectFrom('resource_feeds as f')
    .innerJoin('resources as r', 'r.resource_id', 'f.resource_id')
    .select(['f.resource_id', 'f.organization_id', 'r.name', 'r.time_zone'])
    .where('f.secret_hash', '=', hashSecret(secret))
    .where('f.revoked_at', 'is', null)
    .where('r.deleted_at', 'is', null)
    .executeTakeFirst();
  if (!feed) return null;
  const { events, seriesIds } = await loadFeedEvents(deps.db, feed, deps.clock());
  // Each series with every occurrence it ever had, so the instances that are not this resource's live
  // bookings become EXDATEs.
  const series = await loadSeriesForResource(deps.db, feed, seriesIds);
  return { ics: renderFeed(feed.name, events, series), resourceName: feed.name };
}

async function loadFeedEvents(
  db: Db,
  feed: { resource_id: string; organization_id: string; time_zone: string },
  now: number,
): Promise<{ events: OutgoingEvent[]; seriesIds: string[] }> {
  const from = new Date(now - FEED_PAST_DAYS * DAY_MS);
  const rows = await db
    .selectFrom('booking_resources as br')
    .innerJoin('bookings as b', 'b.booking_id', 'br.booking_id')
    .select([
      'b.booking_id',
      'b.status',
      'b.start_time',
      'b.end_time',
      'b.title',
      'b.description',
      'b.updated_at',
      'b.series_id',
    ])
    .where('br.resource_id', '=', feed.resource_id)
    .where('b.organization_id', '=', feed.organization_id)
    .where('b.end_time', '>', from)
    // No booking is longer than MAX_BOOKING_DAYS, so this bound loses nothing and lets the
    // (organization_id, start_time) index narrow the scan.
    .where('b.start_time', '>', new Date(from.getTime() - MAX_BOOKING_DAYS * DAY_MS))
    .where((eb) =>
      eb.or([
        eb('b.status', 'in', BUSY_STATUSES),
        eb('b.updated_at', '>=', new Date(now - FEED_CANCELLED_DAYS * DAY_MS)),
      ]),
    )
    .orderBy('b.start_time')
    .orderBy('b.booking_id')
    .limit(FEED_MAX_EVENTS)
    .execute();
  const seriesIds = [...new Set(rows.flatMap((row) => (row.series_id === null ? [] : [row.series_id])))];
  const events = rows
    .filter((row) => row.series_id === null)
    .map((row) => ({
      uid: `${row.booking_id}@sched`,
      bookingId: row.booking_id,
      // Subscribers replace the whole feed on each fetch, so SEQUENCE carries no information here.
      sequence: 0,
      startsAt: row.start_time.getTime(),
      endsAt: row.end_time.getTime(),
      timeZone: feed.time_zone,
      title: row.title,
      description: row.description,
      status: calendarStatus(row.status),
      // Whoever holds the URL would otherwise learn every attendee's address, and some clients take
      // ATTENDEE lines in a subscribed calendar for invitations.
      attendees: [],
      updatedAt: row.updated_at.getTime(),
    }));
  return { events, seriesIds };
}

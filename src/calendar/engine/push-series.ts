import { sql } from 'kysely';
import type { CalendarProvider, OutgoingSeries, SeriesCapable, WrittenEvent } from '../port/provider.js';
import { ProviderError } from '../../integrations/index.js';
import { removeObjects } from '../store/events.js';
import { loadSeriesForResource } from '../../services/outgoing-series.js';
import type { SyncContext } from './context.js';
import { decideFailure } from '../policy/failure-policy.js';

/*
 * Recurring bookings for providers that take a series as one recurring event: a series' link
 * (booking_series_calendar_links) is written as one object holding the rule, its EXDATEs and its
 * overrides. Its occurrences' own links only say that something changed; they are settled by the
 * series' write, and the per-booking push leaves them alone on such a connection.
 */

/** Series written per sync; the rest stay pending for the next sync. */
const MAX_SERIES_PER_SYNC = 100;

type SeriesLinkRow = {
  series_id: string;
  remote_id: string | null;
  etag: string | null;
  sequence: number;
  create_attempted: boolean;
  push_attempts: number;
};

type SeriesProvider = CalendarProvider & SeriesCapable;

export async function pushPendingSeries(context: SyncContext, provider: SeriesProvider): Promise<void> {
  const { deps, connection } = context;
  const links = await deps.db
    .selectFrom('booking_series_calendar_links')
    .select(['series_id', 'remote_id', 'etag', 'sequence', 'create_attempted', 'push_attempts'])
    .where('connection_id', '=', connection.connection_id)
    .where('push_pending', '=', true)
    .orderBy('series_id')
    .limit(MAX_SERIES_PER_SYNC)
    .execute();
  for (const link of links) {
    try {
      await pushSeries(context, provider, link);
    } catch (error) {
      const attempts = link.push_attempts + 1;
      const code = error instanceof ProviderError ? error.code : null;
      const decision = decideFailure({ code, step: 'push', failures: attempts });
      if (decision.scope === 'connection' || !(error instanceof ProviderError)) throw error;
      const retry = decision.action === 'retry';
      await deps.db
        .updateTable('booking_series_calendar_links')
        .set({ last_error: error.message, push_attempts: attempts, push_pending: retry })
        .where('series_id', '=', link.series_id)
        .where('connection_id', '=', connection.connection_id)
        .execute();
      // The occurrences wait with their series: counted as attempted, so they follow its backoff.
      await sql`
        update booking_calendar_links l set last_error = ${error.message}, push_attempts = ${attempts},
          push_pending = ${retry}
        from bookings b
        where b.booking_id = l.booking_id and b.series_id = ${link.series_id}
          and l.connection_id = ${connection.connection_id} and l.push_pending`.execute(deps.db);
    }
  }
}

async function pushSeries(
  context: SyncContext,
  provider: SeriesProvider,
  link: SeriesLinkRow,
): Promise<void> {
  const { deps, connection } = context;
  const [series] = await loadSeriesForResource(deps.db, connection, [link.series_id]);
  if (!series) return;
  const seen = Math.max(0, ...series.occurrences.map((o) => o.updatedAt));
  // Events written one per occurrence before the series was written whole go first.
  await removeSingleEvents(context, provider, link.series_id);
  const live = series.occurrences.some((o) => o.status === 'confirmed');
  if (!live) {
    const remoteId =
      link.remote_id ??
      (link.create_attempted ? ((await provider.findEvent(series.uid))?.remoteId ?? null) : null);
    if (remoteId) {
      await provider.deleteEvent(remoteId, null);
      await removeObjects(deps.db, connection.connection_id, [remoteId]);
      context.stats.pushed++;
    }
    await finishSeries(context, link.series_id, seen, { remoteId: null, etag: null }, link.sequence);
    return;
  }
  const sequence = link.sequence + 1;
  const written = link.remote_id
    ? await replaceSeries(provider, link.remote_id, link.etag, series)
    : await createSeries(context, provider, link.series_id, link.create_attempted, series);
  context.stats.pushed++;
  await finishSeries(context, link.series_id, seen, written, sequence);
}

async function createSeries(
  context: SyncContext,
  provider: SeriesProvider,
  seriesId: string,
  attempted: boolean,
  series: OutgoingSeries,
): Promise<WrittenEvent> {
  if (!attempted) {
    await context.deps.db
      .updateTable('booking_series_calendar_links')
      .set({ create_attempted: true })
      .where('series_id', '=', seriesId)
      .where('connection_id', '=', context.connection.connection_id)
      .execute();
  }
  return provider.createSeries(series);
}

/**
 * A conditional replace. The series is Sched's: a version changed at the provider meanwhile is
 * written over (once, with the etag it has now), and one deleted there is made again.
 */
async function replaceSeries(
  provider: SeriesProvider,
  remoteId: string,
  etag: string | null,
  series: OutgoingSeries,
): Promise<WrittenEvent> {
  try {
    return await provider.updateSeries(remoteId, etag, series);
  } catch (error) {
    if (!(error instanceof ProviderError)) throw error;
    if (error.code === 'NOT_FOUND') return provider.createSeries(series);
    if (error.code !== 'PRECONDITION_FAILED') throw error;
    const current = await provider.getEvent(remoteId);
    if (!current) return provider.createSeries(series);
    return provider.updateSeries(remoteId, current.etag, series);
  }
}

/** Deletes the per-occurrence events of a series written before this connection took it whole. */
async function removeSingleEvents(context: SyncContext, provider: SeriesProvider, seriesId: string) {
  const { deps, connection } = context;
  const singles = (
    await sql<{ booking_id: string; remote_id: string }>`
      select l.booking_id, l.remote_id from booking_calendar_links l join bookings b on b.booking_id = l.booking_id
      where b.series_id = ${seriesId} and l.connection_id = ${connection.connection_id}
        and l.remote_id is not null`.execute(deps.db)
  ).rows;
  for (const single of singles) {
    await provider.deleteEvent(single.remote_id, null);
    await removeObjects(deps.db, connection.connection_id, [single.remote_id]);
    await deps.db
      .updateTable('booking_calendar_links')
      .set({ remote_id: null, etag: null })
      .where('booking_id', '=', single.booking_id)
      .where('connection_id', '=', connection.connection_id)
      .execute();
  }
}

/**
 * Records the write. The series and those of its occurrences that changed while it was being written
 * stay pending, so their newer version goes out on the next pass; the others are done.
 */
async function finishSeries(
  context: SyncContext,
  seriesId: string,
  seen: number,
  written: { remoteId: string | null; etag: string | null },
  sequence: number,
): Promise<void> {
  const { deps, connection } = context;
  const seenAt = new Date(seen);
  await sql`
    update booking_series_calendar_links set remote_id = ${written.remoteId}, etag = ${written.etag},
      sequence = ${sequence}, last_pushed_at = ${new Date(context.now)}, push_attempts = 0, last_error = null,
      push_pending = exists (select 1 from bookings b where b.series_id = ${seriesId}
        and b.updated_at > ${seenAt})
    where series_id = ${seriesId} and connection_id = ${connection.connection_id}`.execute(deps.db);
  await sql`
    update booking_calendar_links l set push_pending = false, push_attempts = 0, last_error = null,
      last_pushed_at = ${new Date(context.now)}
    from bookings b
    where b.booking_id = l.booking_id and b.series_id = ${seriesId} and b.updated_at <= ${seenAt}
      and l.connection_id = ${connection.connection_id} and l.push_pending`.execute(deps.db);
}

import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { expandSeries, type RecurrenceFrequency, sortedWeekdays } from '../../domain/booking-recurrence.js';
import { formatInstant, type Interval } from '../../domain/index.js';
import type { BookingRow, BookingSeriesRow, Db, StoredRecurrence } from '../../storage/database.js';
import { isExclusionViolation, isRetryableConflict } from '../../storage/errors.js';
import { recordAudit } from '../audit.js';
import { type BookableResource, loadBookableResources } from '../bookable-resources.js';
import type { Actor } from '../context.js';
import {
  ErrorCode,
  type OccurrenceConflict,
  SchedError,
  validationError,
  validationErrors,
} from '../errors.js';
import { emitEvent } from '../webhook-events.js';
import { fairnessOrder } from './assign.js';
import { checkInterval, findConflicts, lockOrder, lockResources } from './checks.js';
import type { BookingDeps, BookingInput } from './commands.js';
import { type BookingView, bookingView } from './view.js';
import { sweepExpiredHolds } from './write.js';

/**
 * Recurring bookings. A series is a rule kept in `booking_series` and one ordinary booking per
 * occurrence (each with its `booking_resources` rows under the exclusion constraint, its
 * `booking.created` event and its calendar outbox rows), all written in one transaction or none.
 * Occurrences keep the wall-clock time of the first in the first resource's time zone
 * (domain/booking-recurrence.ts).
 */

export type RecurrenceInput = {
  frequency: RecurrenceFrequency;
  interval?: number | undefined;
  count?: number | undefined;
  /** Epoch ms: the last instant an occurrence may start at. */
  until?: number | undefined;
  by_weekday?: string[] | undefined;
};

export type SeriesView = {
  series_id: string;
  recurrence: StoredRecurrence;
  /** The zone whose wall clock the occurrences keep. */
  time_zone: string;
  /** Every occurrence, by start time, cancelled ones included. */
  bookings: BookingView[];
};

const MAX_WRITE_ATTEMPTS = 3;
/** booking_resources rows per insert statement, well under PostgreSQL's 65,535 parameters. */
const ROWS_PER_INSERT = 1000;

function storedRecurrence(rule: RecurrenceInput): StoredRecurrence {
  return {
    frequency: rule.frequency,
    interval: rule.interval ?? 1,
    count: rule.count ?? null,
    until: rule.until === undefined ? null : formatInstant(rule.until),
    by_weekday: rule.by_weekday === undefined ? null : sortedWeekdays(rule.by_weekday),
  };
}

function seriesNotFound(seriesId: string): SchedError {
  return new SchedError(ErrorCode.SERIES_NOT_FOUND, `no booking series ${seriesId}`);
}

function seriesUnavailable(occurrences: OccurrenceConflict[]): SchedError {
  const conflicts = occurrences.flatMap((occurrence) => occurrence.conflicts);
  const detail =
    occurrences.length === 1
      ? `the occurrence at ${occurrences[0]!.start_time} is not available`
      : `${occurrences.length} occurrences are not available`;
  return new SchedError(ErrorCode.SLOT_UNAVAILABLE, `${detail}; nothing was booked`, {
    conflicts,
    occurrences,
  });
}

/** The occurrences that cannot be booked on these resources, each with its conflicts. */
async function occurrenceConflicts(
  db: Db,
  resources: readonly BookableResource[],
  occurrences: readonly Interval[],
  now: number,
  ignoreAvailability: boolean,
): Promise<OccurrenceConflict[]> {
  const found: OccurrenceConflict[] = [];
  for (const occurrence of occurrences) {
    const conflicts = await findConflicts(db, resources, occurrence, now, ignoreAvailability);
    if (conflicts.length > 0) {
      found.push({
        start_time: formatInstant(occurrence.start),
        end_time: formatInstant(occurrence.end),
        conflicts,
      });
    }
  }
  return found;
}

/** Per occurrence, the conflicts of every candidate tried (round-robin), in occurrence order. */
function mergeByOccurrence(lists: readonly OccurrenceConflict[][]): OccurrenceConflict[] {
  const byStart = new Map<string, OccurrenceConflict>();
  for (const occurrence of lists.flat()) {
    const known = byStart.get(occurrence.start_time);
    if (known) known.conflicts.push(...occurrence.conflicts);
    else byStart.set(occurrence.start_time, { ...occurrence, conflicts: [...occurrence.conflicts] });
  }
  return [...byStart.values()].sort((a, b) => Date.parse(a.start_time) - Date.parse(b.start_time));
}

type SeriesPlan = {
  seriesId: string;
  input: BookingInput;
  recurrence: StoredRecurrence;
  timeZone: string;
  occurrences: Interval[];
  now: number;
};

/**
 * Books every occurrence of the series or none. The first occurrence is the requested booking; the
 * others follow the rule in the first resource's time zone. With `assign: "one"`, the one resource
 * (in the fairness order) that is free for all occurrences is booked for all of them.
 */
export async function createBookingSeries(
  deps: BookingDeps,
  actor: Actor,
  input: BookingInput,
  rule: RecurrenceInput,
): Promise<SeriesView> {
  if (input.hold_id !== undefined) {
    throw validationError(
      'hold_id',
      'cannot be combined with recurrence: a hold keeps one time, not a series',
    );
  }
  const first = { start: input.start, end: input.end };
  checkInterval(first);
  const resources = await loadBookableResources(deps.db, actor, input.resource_ids, {
    kind: deps.databaseKind,
  });
  const timeZone = resources[0]!.timeZone;
  const expansion = expandSeries(first, timeZone, {
    frequency: rule.frequency,
    interval: rule.interval,
    count: rule.count,
    until: rule.until,
    byWeekday: rule.by_weekday,
  });
  if (!expansion.ok) throw validationErrors(expansion.problems);
  const plan: SeriesPlan = {
    seriesId: randomUUID(),
    input,
    recurrence: storedRecurrence(rule),
    timeZone,
    occurrences: expansion.occurrences,
    now: deps.clock(),
  };
  for (let attempt = 1; ; attempt++) {
    try {
      return await deps.db.transaction().execute((trx) => placeSeries(trx, deps, actor, plan));
    } catch (error) {
      if (!isExclusionViolation(error) && !isRetryableConflict(error)) throw error;
      // A booking committed between the checks and the insert: the next attempt's checks see it and
      // answer with the occurrences it takes.
      if (attempt < MAX_WRITE_ATTEMPTS) continue;
      const fresh = await loadBookableResources(deps.db, actor, input.resource_ids, {
        kind: deps.databaseKind,
      });
      throw seriesUnavailable(
        await occurrenceConflicts(deps.db, fresh, plan.occurrences, deps.clock(), true),
      );
    }
  }
}

async function placeSeries(trx: Db, deps: BookingDeps, actor: Actor, plan: SeriesPlan): Promise<SeriesView> {
  const { input, occurrences, now } = plan;
  const ignoreAvailability = input.ignore_availability ?? false;
  // Every resource is locked, in the one order, so two series over the same resources take turns.
  await lockResources(trx, input.resource_ids);
  const span = { start: occurrences[0]!.start, end: occurrences[occurrences.length - 1]!.end };
  await sweepExpiredHolds(trx, input.resource_ids, span, now);
  const resources = await loadBookableResources(trx, actor, input.resource_ids, { kind: deps.databaseKind });
  if ((input.assign ?? 'all') === 'all' || resources.length === 1) {
    const found = await occurrenceConflicts(trx, resources, occurrences, now, ignoreAvailability);
    if (found.length > 0) throw seriesUnavailable(found);
    return insertSeries(trx, deps, actor, plan, input.resource_ids);
  }
  const byId = new Map(resources.map((resource) => [resource.resourceId, resource]));
  const tried: OccurrenceConflict[][] = [];
  for (const resourceId of await fairnessOrder(trx, input.resource_ids, now)) {
    const resource = byId.get(resourceId);
    if (!resource) continue;
    const found = await occurrenceConflicts(trx, [resource], occurrences, now, ignoreAvailability);
    if (found.length > 0) {
      tried.push(found);
      continue;
    }
    await sql`savepoint sched_series_candidate`.execute(trx);
    try {
      const view = await insertSeries(trx, deps, actor, plan, [resourceId]);
      await sql`release savepoint sched_series_candidate`.execute(trx);
      return view;
    } catch (error) {
      if (!isExclusionViolation(error)) throw error;
      await sql`rollback to savepoint sched_series_candidate`.execute(trx);
      tried.push(await occurrenceConflicts(trx, [resource], occurrences, now, true));
    }
  }
  throw seriesUnavailable(mergeByOccurrence(tried));
}

async function insertSeries(
  trx: Db,
  deps: BookingDeps,
  actor: Actor,
  plan: SeriesPlan,
  resourceIds: string[],
): Promise<SeriesView> {
  const { input, now } = plan;
  const at = new Date(now);
  const status = input.status ?? 'confirmed';
  await trx
    .insertInto('booking_series')
    .values({
      series_id: plan.seriesId,
      organization_id: actor.organizationId,
      recurrence: JSON.stringify(plan.recurrence),
      time_zone: plan.timeZone,
      created_at: at,
    })
    .execute();
  const rows: BookingRow[] = plan.occurrences.map((occurrence) => ({
    booking_id: randomUUID(),
    organization_id: actor.organizationId,
    status,
    resource_ids: resourceIds,
    start_time: new Date(occurrence.start),
    end_time: new Date(occurrence.end),
    title: input.title,
    description: input.description ?? null,
    attendees: input.attendees ?? [],
    metadata: input.metadata ?? {},
    cancel_reason: null,
    created_at: at,
    updated_at: at,
    series_id: plan.seriesId,
    recurrence_id: new Date(occurrence.start),
  }));
  await trx
    .insertInto('bookings')
    .values(
      rows.map((row) => ({
        ...row,
        attendees: JSON.stringify(row.attendees),
        metadata: JSON.stringify(row.metadata),
      })),
    )
    .execute();
  const resourceRows = rows.flatMap((row) =>
    lockOrder(resourceIds).map((resourceId) => ({
      booking_id: row.booking_id,
      resource_id: resourceId,
      organization_id: actor.organizationId,
      during: `[${row.start_time.toISOString()},${row.end_time.toISOString()})`,
      status,
      booked_at: row.created_at,
    })),
  );
  for (let i = 0; i < resourceRows.length; i += ROWS_PER_INSERT) {
    await trx
      .insertInto('booking_resources')
      .values(resourceRows.slice(i, i + ROWS_PER_INSERT))
      .execute();
  }
  const bookingIds = rows.map((row) => row.booking_id);
  // The calendar outbox: every connection Sched writes to receives each occurrence.
  await sql`
    insert into booking_calendar_links (booking_id, connection_id, organization_id)
    select ids.booking_id, c.connection_id, c.organization_id
    from unnest(${bookingIds}::uuid[]) as ids(booking_id)
    cross join calendar_connections c
    where c.resource_id = any(${resourceIds}::uuid[]) and c.direction <> 'pull'`.execute(trx);
  const views = rows.map(bookingView);
  await recordAudit(trx, actor, {
    action: 'booking_series.created',
    targetType: 'booking_series',
    targetId: plan.seriesId,
    details: {
      series_id: plan.seriesId,
      recurrence: plan.recurrence,
      time_zone: plan.timeZone,
      resource_ids: resourceIds,
      status,
      booking_ids: bookingIds,
      ignore_availability: input.ignore_availability ?? false,
      ...(input.assign === 'one' ? { assign: 'one' } : {}),
    },
  });
  for (const view of views) {
    await emitEvent(trx, actor.organizationId, 'booking.created', view, now, deps.databaseKind);
    if (status === 'pending') {
      await emitEvent(trx, actor.organizationId, 'booking.pending', view, now, deps.databaseKind);
    }
  }
  return { series_id: plan.seriesId, recurrence: plan.recurrence, time_zone: plan.timeZone, bookings: views };
}

async function findSeries(
  db: Db,
  actor: Actor,
  seriesId: string,
  forUpdate = false,
): Promise<BookingSeriesRow> {
  let select = db
    .selectFrom('booking_series')
    .selectAll()
    .where('series_id', '=', seriesId)
    .where('organization_id', '=', actor.organizationId);
  if (forUpdate) select = select.forUpdate();
  const row = await select.executeTakeFirst();
  if (!row) throw seriesNotFound(seriesId);
  return row;
}

async function seriesView(db: Db, series: BookingSeriesRow): Promise<SeriesView> {
  const rows = await db
    .selectFrom('bookings')
    .selectAll()
    .where('series_id', '=', series.series_id)
    .where('organization_id', '=', series.organization_id)
    .orderBy('start_time')
    .orderBy('booking_id')
    .execute();
  return {
    series_id: series.series_id,
    recurrence: series.recurrence,
    time_zone: series.time_zone,
    bookings: rows.map(bookingView),
  };
}

/** The series and all its occurrences; another organization's series is a 404. */
export async function getBookingSeries(db: Db, actor: Actor, seriesId: string): Promise<SeriesView> {
  return seriesView(db, await findSeries(db, actor, seriesId));
}

/**
 * Cancels every pending or confirmed occurrence starting at or after `from` (all of them when it is
 * left out), each as cancelBooking would: its time freed, `booking.cancelled`, a calendar push.
 * Idempotent: occurrences already cancelled (or rejected) stay as they are.
 */
export async function cancelBookingSeries(
  deps: BookingDeps,
  actor: Actor,
  seriesId: string,
  options: { from?: number | undefined; reason?: string | undefined },
): Promise<SeriesView> {
  return deps.db.transaction().execute(async (trx) => {
    const series = await findSeries(trx, actor, seriesId, true);
    const now = deps.clock();
    let update = trx
      .updateTable('bookings')
      .set({ status: 'cancelled', cancel_reason: options.reason ?? null, updated_at: new Date(now) })
      .where('series_id', '=', seriesId)
      .where('organization_id', '=', actor.organizationId)
      .where('status', 'in', ['pending', 'confirmed']);
    if (options.from !== undefined) update = update.where('start_time', '>=', new Date(options.from));
    const cancelled = (await update.returningAll().execute()).sort(
      (a, b) => a.start_time.getTime() - b.start_time.getTime() || a.booking_id.localeCompare(b.booking_id),
    );
    if (cancelled.length === 0) return seriesView(trx, series);
    const bookingIds = cancelled.map((row) => row.booking_id);
    await trx
      .updateTable('booking_resources')
      .set({ status: 'cancelled' })
      .where('booking_id', 'in', bookingIds)
      .execute();
    await sql`
      insert into booking_calendar_links (booking_id, connection_id, organization_id)
      select b.booking_id, c.connection_id, c.organization_id
      from bookings b join calendar_connections c on c.resource_id = any(b.resource_ids)
      where b.booking_id = any(${bookingIds}::uuid[]) and c.direction <> 'pull'
      on conflict (booking_id, connection_id) do update set push_pending = true, push_attempts = 0`.execute(
      trx,
    );
    await recordAudit(trx, actor, {
      action: 'booking_series.cancelled',
      targetType: 'booking_series',
      targetId: seriesId,
      details: {
        from: options.from === undefined ? null : formatInstant(options.from),
        reason: options.reason ?? null,
        booking_ids: bookingIds,
      },
    });
    for (const row of cancelled) {
      await emitEvent(
        trx,
        actor.organizationId,
        'booking.cancelled',
        bookingView(row),
        now,
        deps.databaseKind,
      );
    }
    return seriesView(trx, series);
  });
}

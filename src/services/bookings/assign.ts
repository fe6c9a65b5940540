import { sql } from 'kysely';
import type { Interval } from '../../domain/index.js';
import type { Db } from '../../storage/database.js';
import { isExclusionViolation } from '../../storage/errors.js';
import type { DatabaseKind } from '../../storage/open-database.js';
import { BUSY_STATUS_LIST, type BookableResource, loadBookableResources } from '../bookable-resources.js';
import type { Actor } from '../context.js';
import type { BookingConflict } from '../errors.js';
import { findConflicts, lockResources, slotUnavailable } from './checks.js';
import { sweepExpiredHolds } from './write.js';

export type Assign = 'all' | 'one';

const FAIRNESS_DAYS = 30;
const MS_PER_DAY = 86_400_000;

/**
 * The candidates of a round-robin request, fairest first (`least_recently_booked`): the resource
 * whose latest pending or confirmed booking was made longest ago, or never; ties by the fewest
 * confirmed bookings made in the last 30 days, then by id.
 */
export async function fairnessOrder(db: Db, resourceIds: readonly string[], now: number): Promise<string[]> {
  // One probe of booking_resources_booked_idx per member (migration 2026-12-05-0006): the cost does not
  // grow with the pool's history.
  const latest = await sql<{ resource_id: string; booked_at: Date | null }>`
    select ids.resource_id,
      (select max(br.booked_at) from booking_resources br
        where br.resource_id = ids.resource_id and br.booking_id is not null
          and br.status in (${BUSY_STATUS_LIST})) as booked_at
    from unnest(${[...resourceIds]}::uuid[]) as ids(resource_id)`.execute(db);
  const lastBooked = new Map(
    latest.rows.map((row) => [
      String(row.resource_id),
      row.booked_at === null ? null : new Date(row.booked_at).getTime(),
    ]),
  );
  // The 30-day count only breaks ties, and a member never booked has none: it is read only for members
  // last booked at the same instant (one booking of several of them, or a series).
  const tied = new Set<string>();
  const seen = new Map<number, string>();
  for (const [id, at] of lastBooked) {
    if (at === null) continue;
    const other = seen.get(at);
    if (other !== undefined) tied.add(other).add(id);
    seen.set(at, id);
  }
  const recent = new Map<string, number>();
  if (tied.size > 0) {
    const since = new Date(now - FAIRNESS_DAYS * MS_PER_DAY);
    const counts = await sql<{ resource_id: string; n: number }>`
      select ids.resource_id,
        (select count(*)::int from booking_resources br
          where br.resource_id = ids.resource_id and br.booking_id is not null
            and br.status = 'confirmed' and br.booked_at > ${since}) as n
      from unnest(${[...tied]}::uuid[]) as ids(resource_id)`.execute(db);
    for (const row of counts.rows) recent.set(String(row.resource_id), Number(row.n));
  }
  const order = (at: number | null | undefined) => (at === null || at === undefined ? -Infinity : at);
  return [...lastBooked.keys()].sort(
    (a, b) =>
      order(lastBooked.get(a)) - order(lastBooked.get(b)) ||
      (recent.get(a) ?? 0) - (recent.get(b) ?? 0) ||
      (a < b ? -1 : a > b ? 1 : 0),
  );
}

export type PlaceRequest = {
  resourceIds: string[];
  assign: Assign;
  requested: Interval;
  /** The instant the schedule, notice and horizon are judged at. */
  checkedAt: number;
  /** The instant holds expire by. */
  now: number;
  ignoreAvailability: boolean;
  databaseKind?: DatabaseKind | undefined;
};

/**
 * Runs the checks and the insert for the request inside the caller's transaction. With `all` every
 * resource is taken; with `one` the candidates are tried in the fairness order, each insert in a
 * savepoint, so the choice and the insert are one step (a plain booking takes no lock, and may still
 * race a candidate): when two requests race for the last free
 * resource the exclusion constraint refuses one, which then tries the next candidate or gets a 409.
 */
export async function placeOnFreeResources<T>(
  trx: Db,
  actor: Actor,
  request: PlaceRequest,
  insert: (resourceIds: string[]) => Promise<T>,
): Promise<T> {
  // Every resource of the request is locked first, in the one order: round-robin requests and holds
  // over a pool then take turns, each reading what the one before it committed, instead of piling up
  // on each other's uncommitted rows in the constraint's index.
  await lockResources(trx, request.resourceIds);
  await sweepExpiredHolds(trx, request.resourceIds, request.requested, request.now);
  const resources = await loadBookableResources(trx, actor, request.resourceIds, {
    kind: request.databaseKind,
  });
  const conflictsOf = (chosen: BookableResource[]) =>
    findConflicts(trx, chosen, request.requested, request.checkedAt, request.ignoreAvailability);
  if (request.assign === 'all' || resources.length === 1) {
    const conflicts = await conflictsOf(resources);
    if (conflicts.length > 0) throw slotUnavailable(conflicts);
    return insert(request.resourceIds);
  }
  const byId = new Map(resources.map((resource) => [resource.resourceId, resource]));
  const all: BookingConflict[] = [];
  for (const resourceId of await fairnessOrder(trx, request.resourceIds, request.now)) {
    const resource = byId.get(resourceId);
    if (!resource) continue;
    const conflicts = await conflictsOf([resource]);
    if (conflicts.length > 0) {
      all.push(...conflicts);
      continue;
    }
    await sql`savepoint sched_candidate`.execute(trx);
    try {
      const result = await insert([resourceId]);
      await sql`release savepoint sched_candidate`.execute(trx);
      return result;
    } catch (error) {
      if (!isExclusionViolation(error)) throw error;
      await sql`rollback to savepoint sched_candidate`.execute(trx);
      // Taken a moment ago by a request that committed since this one read.
      all.push(...(await findConflicts(trx, [resource], request.requested, request.now, true)));
    }
  }
  throw slotUnavailable(all);
}

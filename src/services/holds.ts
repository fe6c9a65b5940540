import { randomUUID } from 'node:crypto';
import { formatInstant } from '../domain/index.js';
import type { Db, HoldRow } from '../storage/database.js';
import type { DatabaseKind } from '../storage/open-database.js';
import { recordAudit } from './audit.js';
import { type Assign, placeOnFreeResources } from './bookings/assign.js';
import { checkInterval } from './bookings/checks.js';
import { guardDoubleBooking, insertResourceRows } from './bookings/write.js';
import type { Actor, ServiceDeps } from './context.js';
import { ErrorCode, SchedError } from './errors.js';

export const DEFAULT_HOLD_TTL_SECONDS = 300;
export const MIN_HOLD_TTL_SECONDS = 30;
export const MAX_HOLD_TTL_SECONDS = 3600;

export type HoldDeps = ServiceDeps & { databaseKind?: DatabaseKind | undefined };

export type HoldInput = {
  resource_ids: string[];
  start: number;
  end: number;
  assign?: Assign | undefined;
  ttl_seconds?: number | undefined;
};

export type HoldView = {
  hold_id: string;
  resource_ids: string[];
  start_time: string;
  end_time: string;
  expires_at: string;
  created_at: string;
};

export function holdView(row: HoldRow): HoldView {
  return {
    hold_id: row.hold_id,
    resource_ids: row.resource_ids,
    start_time: formatInstant(row.start_time.getTime()),
    end_time: formatInstant(row.end_time.getTime()),
    expires_at: row.expires_at.toISOString(),
    created_at: row.created_at.toISOString(),
  };
}

/** Keeps the time on the resources (or, with `one`, on one of them) until it expires or is released. */
export async function createHold(deps: HoldDeps, actor: Actor, input: HoldInput): Promise<HoldView> {
  const requested = { start: input.start, end: input.end };
  checkInterval(requested);
  const now = deps.clock();
  const ttl = input.ttl_seconds ?? DEFAULT_HOLD_TTL_SECONDS;
  const assign = input.assign ?? 'all';
  const holdId = randomUUID();
  return guardDoubleBooking(deps, actor, input, undefined, () =>
    deps.db.transaction().execute((trx) =>
      placeOnFreeResources(
        trx,
        actor,
        {
          resourceIds: input.resource_ids,
          assign,
          requested,
          checkedAt: now,
          now,
          ignoreAvailability: false,
          databaseKind: deps.databaseKind,
        },
        async (resourceIds) => {
          const row = await trx
            .insertInto('holds')
            .values({
              hold_id: holdId,
              organization_id: actor.organizationId,
              resource_ids: resourceIds,
              start_time: new Date(requested.start),
              end_time: new Date(requested.end),
              expires_at: new Date(now + ttl * 1000),
              created_at: new Date(now),
            })
            .returningAll()
            .executeTakeFirstOrThrow();
          await insertResourceRows(
            trx,
            actor,
            { hold_id: holdId, status: 'held', expires_at: row.expires_at },
            resourceIds,
            requested,
          );
          const view = holdView(row);
          await recordAudit(trx, actor, {
            action: 'hold.created',
            targetType: 'hold',
            targetId: holdId,
            details: { hold: view, assign },
          });
          return view;
        },
      ),
    ),
  );
}

async function findLiveHold(db: Db, actor: Actor, holdId: string, now: number, forUpdate = false) {
  let select = db
    .selectFrom('holds')
    .selectAll()
    .where('hold_id', '=', holdId)
    .where('organization_id', '=', actor.organizationId);
  if (forUpdate) select = select.forUpdate();
  const row = await select.executeTakeFirst();
  if (!row) throw new SchedError(ErrorCode.HOLD_NOT_FOUND, `no hold ${holdId}`);
  if (row.expires_at.getTime() <= now) {
    throw new SchedError(ErrorCode.HOLD_EXPIRED, `hold ${holdId} expired at ${row.expires_at.toISOString()}`);
  }
  return row;
}

/** An expired hold is gone for its users, though its row may wait for the next sweep. */
export async function getHold(deps: HoldDeps, actor: Actor, holdId: string): Promise<HoldView> {
  const row = await deps.db
    .selectFrom('holds')
    .selectAll()
    .where('hold_id', '=', holdId)
    .where('organization_id', '=', actor.organizationId)
    .where('expires_at', '>', new Date(deps.clock()))
    .executeTakeFirst();
  if (!row) throw new SchedError(ErrorCode.HOLD_NOT_FOUND, `no hold ${holdId}`);
  return holdView(row);
}

/** Releases the time at once. */
export async function releaseHold(deps: HoldDeps, actor: Actor, holdId: string): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    const row = await trx
      .deleteFrom('holds')
      .where('hold_id', '=', holdId)
      .where('organization_id', '=', actor.organizationId)
      .returning(['hold_id', 'expires_at'])
      .executeTakeFirst();
    if (!row || row.expires_at.getTime() <= deps.clock()) {
      throw new SchedError(ErrorCode.HOLD_NOT_FOUND, `no hold ${holdId}`);
    }
    await recordAudit(trx, actor, { action: 'hold.released', targetType: 'hold', targetId: holdId });
  });
}

/**
 * Consumes a live hold inside the booking's transaction: its rows go, so the booking's own rows can
 * take the same time, and nobody else could take it in between.
 */
export async function takeHold(db: Db, actor: Actor, holdId: string, now: number): Promise<HoldRow> {
  const row = await findLiveHold(db, actor, holdId, now, true);
  await db.deleteFrom('holds').where('hold_id', '=', holdId).execute();
  return row;
}

/**
 * The resources a booking made from this hold takes: the hold's. The request must name the same
 * time and the same resources, or (with `assign: "one"`) a pool that includes the hold's resource.
 */
export function holdResourcesFor(
  hold: HoldRow,
  request: { resource_ids: string[]; start: number; end: number },
  assign: Assign,
): string[] {
  if (hold.start_time.getTime() !== request.start || hold.end_time.getTime() !== request.end) {
    throw new SchedError(ErrorCode.HOLD_MISMATCH, 'start_time and end_time must match the hold');
  }
  const asked = new Set(request.resource_ids);
  const same = hold.resource_ids.length === asked.size && hold.resource_ids.every((id) => asked.has(id));
  const inPool = assign === 'one' && hold.resource_ids.every((id) => asked.has(id));
  if (!same && !inPool) {
    throw new SchedError(ErrorCode.HOLD_MISMATCH, 'resource_ids must match the hold');
  }
  return hold.resource_ids;
}

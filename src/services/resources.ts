import { canonicalTimeZone } from '../domain/time-zones.js';
import type { Db, ResourceRow } from '../storage/database.js';
import { recordAudit } from './audit.js';
import type { Actor, ServiceDeps } from './context.js';
import { ErrorCode, SchedError } from './errors.js';
import { afterKey, finishPage, pageOf, timeKey } from './pagination.js';

export type ResourceKind = 'person' | 'room' | 'equipment';

export type ResourceView = {
  resource_id: string;
  name: string;
  kind: ResourceKind;
  time_zone: string;
  email: string | null;
  created_at: string;
  updated_at: string;
};

export function resourceView(row: ResourceRow): ResourceView {
  return {
    resource_id: row.resource_id,
    name: row.name,
    kind: row.kind as ResourceKind,
    time_zone: row.time_zone,
    email: row.email,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export function resourceNotFound(resourceId: string, field?: string): SchedError {
  return new SchedError(ErrorCode.RESOURCE_NOT_FOUND, `no resource ${resourceId}`, {
    ...(field ? { errors: [{ field, message: `no resource with id ${resourceId}` }] } : {}),
  });
}

/**
 * A deleted resource, or one of another organization, does not exist for this caller. `field` names
 * the request field that carried the id, when it came in a body rather than the path.
 */
export async function findResource(
  db: Db,
  actor: Actor,
  resourceId: string,
  field?: string,
): Promise<ResourceRow> {
  const row = await db
    .selectFrom('resources')
    .selectAll()
    .where('resource_id', '=', resourceId)
    .where('organization_id', '=', actor.organizationId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (!row) throw resourceNotFound(resourceId, field);
  return row;
}

export async function createResource(
  db: Db,
  actor: Actor,
  input: { name: string; kind: ResourceKind; time_zone: string; email?: string | null | undefined },
): Promise<ResourceView> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('resources')
      .values({
        organization_id: actor.organizationId,
        name: input.name,
        kind: input.kind,
        time_zone: canonicalTimeZone(input.time_zone) ?? input.time_zone,
        email: input.email ?? null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const view = resourceView(row);
    await recordAudit(trx, actor, {
      action: 'resource.created',
      targetType: 'resource',
      targetId: row.resource_id,
      details: { resource: view },
    });
    return view;
  });
}

export async function getResource(db: Db, actor: Actor, resourceId: string): Promise<ResourceView> {
  return resourceView(await findResource(db, actor, resourceId));
}

export async function listResources(
  db: Db,
  actor: Actor,
  query: { limit?: number; cursor?: string; kind?: ResourceKind | undefined },
): Promise<{ resources: ResourceView[]; next_cursor: string | null }> {
  const page = pageOf(query);
  let select = db
    .selectFrom('resources')
    .selectAll()
    .select(timeKey('created_at').as('cursor_time'))
    .where('organization_id', '=', actor.organizationId)
    .where('deleted_at', 'is', null);
  if (query.kind) select = select.where('kind', '=', query.kind);
  if (page.after) select = select.where(afterKey('created_at', 'resource_id', page.after));
  const rows = await select
    .orderBy('created_at')
    .orderBy('resource_id')
    .limit(page.limit + 1)
    .execute();
  const { items, nextCursor } = finishPage(rows, page.limit, (row) => row.resource_id);
  return { resources: items.map(resourceView), next_cursor: nextCursor };
}

export async function updateResource(
  { db, clock }: ServiceDeps,
  actor: Actor,
  resourceId: string,
  patch: { name?: string; kind?: ResourceKind; time_zone?: string; email?: string | null },
): Promise<ResourceView> {
  return db.transaction().execute(async (trx) => {
    const before = await findResource(trx, actor, resourceId);
    const row = await trx
      .updateTable('resources')
      .set({
        ...patch,
        ...(patch.time_zone === undefined
          ? {}
          : { time_zone: canonicalTimeZone(patch.time_zone) ?? patch.time_zone }),
        updated_at: new Date(clock()),
      })
      .where('resource_id', '=', before.resource_id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const view = resourceView(row);
    await recordAudit(trx, actor, {
      action: 'resource.updated',
      targetType: 'resource',
      targetId: resourceId,
      details: { changes: patch },
    });
    return view;
  });
}

/**
 * Soft delete: the resource disappears from the API, while its past bookings keep pointing at it.
 * Its confirmed bookings still hold their slots until cancelled, so nothing is silently lost.
 */
export async function deleteResource(
  { db, clock }: ServiceDeps,
  actor: Actor,
  resourceId: string,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await findResource(trx, actor, resourceId);
    await trx
      .updateTable('resources')
      .set({ deleted_at: new Date(clock()), updated_at: new Date(clock()) })
      .where('resource_id', '=', resourceId)
      .execute();
    await recordAudit(trx, actor, {
      action: 'resource.deleted',
      targetType: 'resource',
      targetId: resourceId,
    });
  });
}

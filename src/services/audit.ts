import type { Db } from '../storage/database.js';
import type { Actor } from './context.js';
import { afterKey, finishPage, pageOf, timeKey } from './pagination.js';

export type AuditEvent = {
  action: string;
  targetType: string;
  targetId: string;
  details?: Record<string, unknown>;
};

/** Called inside the transaction of the change it records, so the log never disagrees with the data. */
export async function recordAudit(db: Db, actor: Pick<Actor, 'organizationId' | 'label'>, event: AuditEvent) {
  await db
    .insertInto('audit_log')
    .values({
      organization_id: actor.organizationId,
      actor: actor.label,
      action: event.action,
      target_type: event.targetType,
      target_id: event.targetId,
      details: JSON.stringify(event.details ?? {}),
    })
    .execute();
}

export type AuditEntryView = {
  at: string;
  actor: string;
  action: string;
  target_type: string;
  target_id: string;
  details: Record<string, unknown>;
};

export async function listAuditLog(
  db: Db,
  actor: Actor,
  query: { limit?: number; cursor?: string; target_id?: string | undefined; action?: string | undefined },
): Promise<{ entries: AuditEntryView[]; next_cursor: string | null }> {
  const page = pageOf(query);
  let select = db
    .selectFrom('audit_log')
    .select(['audit_id', 'at', 'actor', 'action', 'target_type', 'target_id', 'details'])
    .select(timeKey('at').as('cursor_time'))
    .where('organization_id', '=', actor.organizationId);
  if (query.target_id) select = select.where('target_id', '=', query.target_id);
  if (query.action) select = select.where('action', '=', query.action);
  // Newest first: that is what a person reading an audit log looks for.
  if (page.after) select = select.where(afterKey('at', 'audit_id', page.after, 'desc'));
  const rows = await select
    .orderBy('at', 'desc')
    .orderBy('audit_id', 'desc')
    .limit(page.limit + 1)
    .execute();
  const { items, nextCursor } = finishPage(rows, page.limit, (row) => row.audit_id);
  return {
    entries: items.map((row) => ({
      at: row.at.toISOString(),
      actor: row.actor,
      action: row.action,
      target_type: row.target_type,
      target_id: row.target_id,
      details: row.details,
    })),
    next_cursor: nextCursor,
  };
}

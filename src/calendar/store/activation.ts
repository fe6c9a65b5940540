import { sql } from 'kysely';
import { recordAudit } from '../../services/audit.js';
import type { Actor } from '../../services/context.js';
import { emitEvent } from '../../services/webhook-events.js';
import type { ConnectionRow, Db } from '../../storage/database.js';
import { connectionView, type ConnectionView } from './connection-model.js';

/** The audit entry and the webhook event of a connection made or removed. */
export async function announce(
  db: Db,
  actor: Pick<Actor, 'organizationId' | 'label'>,
  row: ConnectionRow,
  type: 'calendar.connected' | 'calendar.disconnected',
  now: number,
  publicUrl: string | undefined,
): Promise<ConnectionView> {
  const view = connectionView(row, publicUrl);
  await recordAudit(db, actor, {
    action: type,
    targetType: 'calendar_connection',
    targetId: row.connection_id,
    details: { provider: row.provider, calendar_id: row.calendar_id, resource_id: row.resource_id },
  });
  await emitEvent(db, row.organization_id, type, view, now);
  return view;
}

/** A connection that can sync now: it receives the resource's upcoming bookings, and is announced. */
export async function connectionActivated(
  db: Db,
  actor: Pick<Actor, 'organizationId' | 'label'>,
  row: ConnectionRow,
  now: number,
  publicUrl: string | undefined,
): Promise<ConnectionView> {
  if (row.direction !== 'pull') await queueFutureBookings(db, row, now);
  return announce(db, actor, row, 'calendar.connected', now, publicUrl);
}

/** A new connection receives the resource's bookings that have not ended yet. */
export async function queueFutureBookings(db: Db, row: ConnectionRow, now: number): Promise<void> {
  await sql`
    insert into booking_calendar_links (booking_id, connection_id, organization_id)
    select b.booking_id, ${row.connection_id}::uuid, ${row.organization_id}::uuid
    from bookings b
    where b.organization_id = ${row.organization_id} and b.status in ('pending', 'confirmed')
      and ${row.resource_id}::uuid = any(b.resource_ids) and b.end_time > ${new Date(now)}
    on conflict do nothing`.execute(db);
}

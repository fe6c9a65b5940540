import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../storage/database.js';

export const WEBHOOK_EVENT_TYPES = [
  'booking.created',
  'booking.updated',
  'booking.cancelled',
  'calendar.connected',
  'calendar.disconnected',
  'calendar.sync_failed',
  'calendar.reauth_required',
  'conflict.detected',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * The SQL that records an event and a pending delivery for every subscription that wants it: CTEs
 * (`subscribers`, `event`) and the final insert, so a caller can make them part of a larger statement.
 * Nothing is written when nobody subscribes.
 */
export function eventWrites(
  organizationId: string,
  type: WebhookEventType,
  data: unknown,
  now: number,
): { ctes: RawBuilder<unknown>; insert: RawBuilder<unknown> } {
  const payload = JSON.stringify({ type, timestamp: new Date(now).toISOString(), data });
  return {
    ctes: sql`
      subscribers as (
        select webhook_id from webhook_endpoints
        where organization_id = ${organizationId} and status <> 'disabled' and ${type} = any(events)
      ), event as (
        insert into webhook_events (organization_id, type, payload)
        select ${organizationId}, ${type}, ${payload}
        where exists (select 1 from subscribers)
        returning event_id
      )`,
    insert: sql`
      insert into webhook_deliveries (webhook_id, event_id, organization_id, event_type, next_attempt_at)
      select subscribers.webhook_id, event.event_id, ${organizationId}, ${type}, ${new Date(now)}
      from subscribers cross join event`,
  };
}

/**
 * Records an event in the caller's transaction: a committed change always produces its event, a
 * rolled-back one never does.
 */
export async function emitEvent(
  db: Db,
  organizationId: string,
  type: WebhookEventType,
  data: unknown,
  now: number,
): Promise<void> {
  const writes = eventWrites(organizationId, type, data, now);
  await sql`with ${writes.ctes} ${writes.insert}`.execute(db);
}

import type { Db } from '../storage/database.js';
import type { DatabaseKind } from '../storage/open-database.js';
import { executePrepared, preparedStatement } from '../storage/prepared.js';

export const WEBHOOK_EVENT_TYPES = [
  'booking.created',
  'booking.updated',
  'booking.cancelled',
  'booking.pending',
  'booking.confirmed',
  'booking.rejected',
  'calendar.connected',
  'calendar.disconnected',
  'calendar.sync_failed',
  'calendar.reauth_required',
  'conflict.detected',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** What a delivery sends: the event's type, when it happened and its data. */
export function eventPayload(type: WebhookEventType, data: unknown, now: number): string {
  return JSON.stringify({ type, timestamp: new Date(now).toISOString(), data });
}

/**
 * The SQL that records an event and a pending delivery for every subscription that wants it: CTEs
 * (`subscribers`, `event`, then a comma) and the final insert, so a caller can make them part of a
 * larger statement. The arguments are the placeholders of the statement's parameters (`$1`…): the
 * organization, the event type, the payload and the time. Nothing is written when nobody subscribes.
 */
export function eventWritesSql(p: { organization: string; type: string; payload: string; at: string }): {
  ctes: string;
  insert: string;
} {
  return {
    ctes: `
      subscribers as (
        select webhook_id from webhook_endpoints
        where organization_id = ${p.organization}::uuid and status <> 'disabled' and ${p.type}::text = any(events)
      ), event as (
        insert into webhook_events (organization_id, type, payload)
        select ${p.organization}::uuid, ${p.type}::text, ${p.payload}::text
        where exists (select 1 from subscribers)
        returning event_id
      )`,
    insert: `
      insert into webhook_deliveries (webhook_id, event_id, organization_id, event_type, next_attempt_at)
      select subscribers.webhook_id, event.event_id, ${p.organization}::uuid, ${p.type}::text, ${p.at}::timestamptz
      from subscribers cross join event`,
  };
}

const EMIT = eventWritesSql({ organization: '$1', type: '$2', payload: '$3', at: '$4' });
const EMIT_EVENT = preparedStatement('sched_emit_event', `with ${EMIT.ctes} ${EMIT.insert}`);

/**
 * Records an event in the caller's transaction: a committed change always produces its event, a
 * rolled-back one never does. Given the database kind, sent as a prepared statement on PostgreSQL.
 */
export async function emitEvent(
  db: Db,
  organizationId: string,
  type: WebhookEventType,
  data: unknown,
  now: number,
  kind?: DatabaseKind,
): Promise<void> {
  await executePrepared(db, kind, EMIT_EVENT, [
    organizationId,
    type,
    eventPayload(type, data, now),
    new Date(now),
  ]);
}

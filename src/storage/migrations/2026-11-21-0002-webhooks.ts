import { sql } from 'kysely';
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table webhook_endpoints (
      webhook_id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations on delete cascade,
      url text not null,
      events text[] not null,
      description text,
      status text not null default 'active' check (status in ('active', 'paused', 'disabled')),
      disabled_reason text,
      secret_sealed text not null,
      previous_secret_sealed text,
      previous_secret_expires_at timestamptz,
      failing_since timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index webhook_endpoints_org_idx on webhook_endpoints (organization_id, created_at, webhook_id)`.execute(
    db,
  );

  // The outbox: written in the transaction of the change that causes it.
  await sql`
    create table webhook_events (
      event_id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations on delete cascade,
      type text not null,
      payload text not null,
      created_at timestamptz not null default now()
    )`.execute(db);

  // One row per event and subscription: the delivery log the API shows, and the queue workers take from.
  await sql`
    create table webhook_deliveries (
      delivery_id uuid primary key default gen_random_uuid(),
      webhook_id uuid not null references webhook_endpoints on delete cascade,
      event_id uuid not null references webhook_events on delete cascade,
      organization_id uuid not null,
      event_type text not null,
      status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
      attempts integer not null default 0,
      next_attempt_at timestamptz,
      lease_until timestamptz,
      last_attempt_at timestamptz,
      last_status_code integer,
      last_latency_ms integer,
      last_response_excerpt text,
      last_error text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at) where status = 'pending'`.execute(
    db,
  );
  await sql`create index webhook_deliveries_list_idx on webhook_deliveries (webhook_id, created_at, delivery_id)`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists webhook_deliveries`.execute(db);
  await sql`drop table if exists webhook_events`.execute(db);
  await sql`drop table if exists webhook_endpoints`.execute(db);
}

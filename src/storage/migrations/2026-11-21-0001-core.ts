import { sql } from 'kysely';
import type { Kysely } from 'kysely';

// Migrations are frozen in time: they take Kysely<unknown> and never import the current schema types.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create extension if not exists btree_gist`.execute(db);

  await sql`
    create table organizations (
      organization_id uuid primary key default gen_random_uuid(),
      name text not null unique,
      created_at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table api_keys (
      api_key_id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations on delete cascade,
      name text not null,
      key_prefix text not null,
      key_hash text not null unique,
      scopes text[] not null,
      created_at timestamptz not null default now(),
      revoked_at timestamptz
    )`.execute(db);
  await sql`create index api_keys_org_idx on api_keys (organization_id, created_at, api_key_id)`.execute(db);

  await sql`
    create table resources (
      resource_id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations on delete cascade,
      name text not null,
      kind text not null check (kind in ('person', 'room', 'equipment')),
      time_zone text not null,
      email text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz
    )`.execute(db);
  await sql`create index resources_org_idx on resources (organization_id, created_at, resource_id)`.execute(
    db,
  );

  await sql`
    create table schedules (
      resource_id uuid primary key references resources on delete cascade,
      organization_id uuid not null references organizations on delete cascade,
      time_zone text not null,
      weekly jsonb not null,
      overrides jsonb not null,
      buffer_before_minutes integer not null,
      buffer_after_minutes integer not null,
      minimum_notice_minutes integer not null,
      booking_horizon_days integer not null,
      updated_at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table bookings (
      booking_id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations on delete cascade,
      status text not null check (status in ('confirmed', 'cancelled')),
      resource_ids uuid[] not null,
      start_time timestamptz not null,
      end_time timestamptz not null,
      title text not null,
      description text,
      attendees jsonb not null default '[]',
      metadata jsonb not null default '{}',
      cancel_reason text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (end_time > start_time)
    )`.execute(db);
  await sql`create index bookings_org_start_idx on bookings (organization_id, start_time, booking_id)`.execute(
    db,
  );

  // One row per booked resource, so a booking of several resources is covered by the same constraint.
  await sql`
    create table booking_resources (
      booking_id uuid not null references bookings on delete cascade,
      resource_id uuid not null references resources,
      organization_id uuid not null,
      during tstzrange not null check (not isempty(during)),
      status text not null check (status in ('confirmed', 'cancelled')),
      primary key (booking_id, resource_id),
      constraint booking_resources_no_overlap
        exclude using gist (resource_id with =, during with &&) where (status = 'confirmed')
    )`.execute(db);
  // The exclusion constraint's partial gist index also serves the availability reads (status = 'confirmed').

  await sql`
    create table idempotency_keys (
      organization_id uuid not null references organizations on delete cascade,
      idempotency_key text not null,
      request_hash text not null,
      state text not null check (state in ('in_progress', 'done')),
      response_status integer,
      response_body text,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null,
      primary key (organization_id, idempotency_key)
    )`.execute(db);
  await sql`create index idempotency_keys_expires_idx on idempotency_keys (expires_at)`.execute(db);

  await sql`
    create table audit_log (
      audit_id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations on delete cascade,
      at timestamptz not null default now(),
      actor text not null,
      action text not null,
      target_type text not null,
      target_id text not null,
      details jsonb not null default '{}'
    )`.execute(db);
  await sql`create index audit_log_org_idx on audit_log (organization_id, at desc, audit_id desc)`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'audit_log',
    'idempotency_keys',
    'booking_resources',
    'bookings',
    'schedules',
    'resources',
    'api_keys',
    'organizations',
  ]) {
    await sql`drop table if exists ${sql.table(table)}`.execute(db);
  }
}

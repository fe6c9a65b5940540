import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Recurring bookings: a series keeps its rule and the time zone its occurrences were placed in; each
 * occurrence is an ordinary booking that names its series. The bookings keep their own rows in
 * booking_resources, so the exclusion constraint guards every occurrence as it guards any booking.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table booking_series (
      series_id uuid primary key,
      organization_id uuid not null references organizations on delete cascade,
      recurrence jsonb not null,
      time_zone text not null,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index booking_series_org_idx on booking_series (organization_id)`.execute(db);
  // recurrence_id is the occurrence's start as the rule placed it (RFC 5545 RECURRENCE-ID): it stays
  // when the booking is moved, so a calendar can show the move as an override of that occurrence.
  await sql`alter table bookings
    add column series_id uuid references booking_series,
    add column recurrence_id timestamptz,
    add constraint bookings_series_occurrence_check check ((series_id is null) = (recurrence_id is null))`.execute(
    db,
  );
  await sql`create index bookings_series_idx on bookings (series_id, start_time)
    where series_id is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists bookings_series_idx`.execute(db);
  await sql`alter table bookings drop constraint if exists bookings_series_occurrence_check`.execute(db);
  await sql`alter table bookings drop column if exists series_id, drop column if exists recurrence_id`.execute(
    db,
  );
  await sql`drop table if exists booking_series`.execute(db);
}

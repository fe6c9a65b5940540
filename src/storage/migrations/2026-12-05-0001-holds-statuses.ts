import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Bookings awaiting confirmation (`pending`) and refused ones (`rejected`), and holds: a hold keeps a
 * time of its resources for a few minutes. Its rows live in booking_resources (status `held`, with the
 * hold's expiry) so the one exclusion constraint refuses a booking or hold that overlaps a pending or
 * confirmed booking or a hold. The constraint does not know the time: writers delete expired holds
 * on the requested resources before they insert, and readers ignore held rows that have expired.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table bookings drop constraint if exists bookings_status_check`.execute(db);
  await sql`alter table bookings add constraint bookings_status_check
    check (status in ('pending', 'confirmed', 'cancelled', 'rejected'))`.execute(db);

  await sql`
    create table holds (
      hold_id uuid primary key,
      organization_id uuid not null references organizations on delete cascade,
      resource_ids uuid[] not null,
      start_time timestamptz not null,
      end_time timestamptz not null,
      expires_at timestamptz not null,
      created_at timestamptz not null,
      check (end_time > start_time)
    )`.execute(db);
  await sql`create index holds_expires_idx on holds (expires_at)`.execute(db);

  await sql`alter table booking_resources drop constraint booking_resources_no_overlap`.execute(db);
  await sql`alter table booking_resources drop constraint booking_resources_pkey`.execute(db);
  await sql`alter table booking_resources drop constraint if exists booking_resources_status_check`.execute(
    db,
  );
  await sql`alter table booking_resources alter column booking_id drop not null`.execute(db);
  await sql`alter table booking_resources
    add column hold_id uuid references holds on delete cascade,
    add column expires_at timestamptz`.execute(db);
  await sql`alter table booking_resources
    add constraint booking_resources_owner_check check ((booking_id is null) <> (hold_id is null)),
    add constraint booking_resources_status_check
      check (status in ('pending', 'confirmed', 'cancelled', 'rejected', 'held')),
    add constraint booking_resources_held_check check ((status = 'held') = (hold_id is not null)),
    add constraint booking_resources_booking_key unique (booking_id, resource_id),
    add constraint booking_resources_hold_key unique (hold_id, resource_id)`.execute(db);
  await sql`alter table booking_resources add constraint booking_resources_no_overlap
    exclude using gist (resource_id with =, during with &&)
    where (status in ('pending', 'confirmed', 'held'))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from booking_resources where hold_id is not null`.execute(db);
  await sql`alter table booking_resources drop constraint booking_resources_no_overlap`.execute(db);
  for (const name of [
    'booking_resources_owner_check',
    'booking_resources_status_check',
    'booking_resources_held_check',
    'booking_resources_booking_key',
    'booking_resources_hold_key',
  ]) {
    await sql`alter table booking_resources drop constraint if exists ${sql.raw(name)}`.execute(db);
  }
  await sql`alter table booking_resources drop column hold_id, drop column expires_at`.execute(db);
  await sql`update booking_resources set status = 'cancelled' where status in ('pending', 'rejected')`.execute(
    db,
  );
  await sql`alter table booking_resources alter column booking_id set not null`.execute(db);
  await sql`alter table booking_resources add primary key (booking_id, resource_id),
    add constraint booking_resources_status_check check (status in ('confirmed', 'cancelled'))`.execute(db);
  await sql`alter table booking_resources add constraint booking_resources_no_overlap
    exclude using gist (resource_id with =, during with &&) where (status = 'confirmed')`.execute(db);
  await sql`drop table if exists holds`.execute(db);
  await sql`update bookings set status = 'cancelled' where status in ('pending', 'rejected')`.execute(db);
  await sql`alter table bookings drop constraint if exists bookings_status_check`.execute(db);
  await sql`alter table bookings add constraint bookings_status_check
    check (status in ('confirmed', 'cancelled'))`.execute(db);
}

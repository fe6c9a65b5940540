import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Round-robin picks the pool member booked least recently, then the one with the fewest confirmed
 * bookings of the last 30 days. Both were read by joining every booking the pool ever had, inside the
 * pool's locks, so each booking cost more than the one before. Each booking row of a resource now
 * carries its booking's creation time (`booked_at`), and two partial indexes answer both questions per
 * member: the latest is one index probe, the 30-day count one short range scan.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table booking_resources add column booked_at timestamptz`.execute(db);
  await sql`update booking_resources br set booked_at = b.created_at
    from bookings b where b.booking_id = br.booking_id`.execute(db);
  await sql`create index booking_resources_booked_idx on booking_resources (resource_id, booked_at)
    where booking_id is not null and status in ('pending', 'confirmed')`.execute(db);
  await sql`create index booking_resources_confirmed_idx on booking_resources (resource_id, booked_at)
    where booking_id is not null and status = 'confirmed'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists booking_resources_confirmed_idx`.execute(db);
  await sql`drop index if exists booking_resources_booked_idx`.execute(db);
  await sql`alter table booking_resources drop column booked_at`.execute(db);
}

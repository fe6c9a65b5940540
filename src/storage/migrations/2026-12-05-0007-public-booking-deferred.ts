import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * A public booking writes its `public_bookings` row first in the booking's transaction, before the
 * pool's locks are taken, so the locked part of a round-robin booking is no longer than the API's.
 * Its foreign key to the booking is therefore checked at commit, when the booking exists.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table public_bookings drop constraint public_bookings_booking_id_fkey`.execute(db);
  await sql`alter table public_bookings add constraint public_bookings_booking_id_fkey
    foreign key (booking_id) references bookings on delete cascade deferrable initially deferred`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table public_bookings drop constraint public_bookings_booking_id_fkey`.execute(db);
  await sql`alter table public_bookings add constraint public_bookings_booking_id_fkey
    foreign key (booking_id) references bookings on delete cascade`.execute(db);
}

import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Occurrences are written in the tens of thousands by a first sync, and two GiST indexes made most
 * of that cost: on PostgreSQL 15, 16,000 rows took about 1 s with them and 0.35 s with these btrees.
 * Every read of occurrences asks for those overlapping a window, so each is now a btree on the
 * range's start: a read bounds `lower(during)` by the window's end and checks the overlap on what it
 * finds (for busy time, within the index itself). It reads from the stored span's start, 31 days
 * back, rather than from the window's: cheap near now, and a far window is rarely asked for, and
 * kept in memory once read.
 *
 * The occurrence's own reference to its connection goes: every occurrence belongs to an event of
 * the same connection, and the event's reference already removes it with the connection.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table calendar_occurrences drop constraint if exists calendar_occurrences_connection_id_fkey`.execute(
    db,
  );
  await sql`drop index if exists calendar_occurrences_busy_idx`.execute(db);
  await sql`create index calendar_occurrences_busy_idx on calendar_occurrences (resource_id, lower(during))
    include (during) where blocks`.execute(db);
  await sql`drop index if exists calendar_occurrences_list_idx`.execute(db);
  await sql`create index calendar_occurrences_list_idx on calendar_occurrences (connection_id, lower(during))`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists calendar_occurrences_list_idx`.execute(db);
  await sql`create index calendar_occurrences_list_idx on calendar_occurrences using gist (connection_id, during)`.execute(
    db,
  );
  await sql`drop index if exists calendar_occurrences_busy_idx`.execute(db);
  await sql`create index calendar_occurrences_busy_idx on calendar_occurrences using gist (resource_id, during)
    where blocks`.execute(db);
  await sql`delete from calendar_occurrences o
    where not exists (select 1 from calendar_connections c where c.connection_id = o.connection_id)`.execute(
    db,
  );
  await sql`alter table calendar_occurrences add constraint calendar_occurrences_connection_id_fkey
    foreign key (connection_id) references calendar_connections on delete cascade`.execute(db);
}

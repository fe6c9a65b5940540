import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * What reading a stored event left out while still reading the rest of it (a series whose rule is in
 * a calendar scale Sched does not expand, an unknown time zone): kept per event, so the connection's
 * warnings name it on every sync, not only the one that read it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table calendar_events add column read_warning text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table calendar_events drop column if exists read_warning`.execute(db);
}

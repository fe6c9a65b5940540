import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * What the last sync of a connection could not read (events left out, with their UID and why), and
 * how many syncs in a row started without finishing: a calendar that takes its process down is
 * quarantined instead of retried.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table calendar_connections
      add column sync_warnings jsonb not null default '{"items": [], "total": 0}'::jsonb,
      add column unfinished_syncs integer not null default 0`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table calendar_connections drop column if exists sync_warnings, drop column if exists unfinished_syncs`.execute(
    db,
  );
}

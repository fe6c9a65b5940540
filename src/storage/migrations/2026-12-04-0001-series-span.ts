import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * The span each recurring series' occurrences can reach (overrides, RDATEs and durations included),
 * so availability and listings past the stored occurrences read only the series that reach the
 * window. NULL at an end is unbounded: a series without COUNT or UNTIL, one whose end could not be
 * found cheaply, and every row stored before this migration (finding the span needs parsing), until
 * the next sync stores it again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table calendar_events add column series_from timestamptz, add column series_until timestamptz`.execute(
    db,
  );
  await sql`create index calendar_events_series_span_idx on calendar_events (connection_id, series_until, series_from)
    where recurring and parse_error is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists calendar_events_series_span_idx`.execute(db);
  await sql`alter table calendar_events drop column if exists series_from, drop column if exists series_until`.execute(
    db,
  );
}

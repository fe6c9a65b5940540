import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Every change to busy time — a booking made, moved or cancelled, a calendar occurrence or recurring
 * series stored or removed, a connection that starts or stops blocking — notifies `sched_busy` with
 * the resource's id, so each process can drop what it keeps in memory for that resource
 * (src/services/busy-index.ts). Statement-level with transition tables: a sync that stores 1,000
 * occurrences of one resource sends one notification, and PostgreSQL folds a transaction's identical
 * notifications into one.
 */
const TABLES = ['booking_resources', 'calendar_occurrences'] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function sched_notify_busy_rows() returns trigger language plpgsql as $$
    declare
      changed text;
    begin
      if tg_op = 'INSERT' then
        for changed in select distinct resource_id::text from new_rows loop
          perform pg_notify('sched_busy', changed);
        end loop;
      elsif tg_op = 'DELETE' then
        for changed in select distinct resource_id::text from old_rows loop
          perform pg_notify('sched_busy', changed);
        end loop;
      else
        for changed in select resource_id::text from new_rows union select resource_id::text from old_rows loop
          perform pg_notify('sched_busy', changed);
        end loop;
      end if;
      return null;
    end
    $$`.execute(db);
  for (const table of TABLES) {
    const name = sql.raw(table);
    await sql`
      create trigger ${sql.raw(`${table}_busy_inserted`)} after insert on ${name}
      referencing new table as new_rows
      for each statement execute function sched_notify_busy_rows()`.execute(db);
    await sql`
      create trigger ${sql.raw(`${table}_busy_updated`)} after update on ${name}
      referencing old table as old_rows new table as new_rows
      for each statement execute function sched_notify_busy_rows()`.execute(db);
    await sql`
      create trigger ${sql.raw(`${table}_busy_deleted`)} after delete on ${name}
      referencing old table as old_rows
      for each statement execute function sched_notify_busy_rows()`.execute(db);
  }
  // Recurring series are expanded again outside the stored span, from calendar_events; a connection
  // decides whether its events block at all. Both name the resource through the connection.
  await sql`
    create function sched_notify_busy_events() returns trigger language plpgsql as $$
    declare
      changed text;
    begin
      if tg_op = 'INSERT' then
        for changed in select distinct c.resource_id::text from calendar_connections c
          where c.connection_id in (select connection_id from new_rows) loop
          perform pg_notify('sched_busy', changed);
        end loop;
      elsif tg_op = 'DELETE' then
        for changed in select distinct c.resource_id::text from calendar_connections c
          where c.connection_id in (select connection_id from old_rows) loop
          perform pg_notify('sched_busy', changed);
        end loop;
      else
        for changed in select distinct c.resource_id::text from calendar_connections c
          where c.connection_id in (select connection_id from new_rows
            union select connection_id from old_rows) loop
          perform pg_notify('sched_busy', changed);
        end loop;
      end if;
      return null;
    end
    $$`.execute(db);
  await sql`
    create trigger calendar_events_busy_inserted after insert on calendar_events
    referencing new table as new_rows
    for each statement execute function sched_notify_busy_events()`.execute(db);
  await sql`
    create trigger calendar_events_busy_updated after update on calendar_events
    referencing old table as old_rows new table as new_rows
    for each statement execute function sched_notify_busy_events()`.execute(db);
  await sql`
    create trigger calendar_events_busy_deleted after delete on calendar_events
    referencing old table as old_rows
    for each statement execute function sched_notify_busy_events()`.execute(db);
  await sql`
    create function sched_notify_busy_connection() returns trigger language plpgsql as $$
    begin
      if tg_op <> 'INSERT' then perform pg_notify('sched_busy', old.resource_id::text); end if;
      if tg_op <> 'DELETE' then perform pg_notify('sched_busy', new.resource_id::text); end if;
      return null;
    end
    $$`.execute(db);
  await sql`
    create trigger calendar_connections_busy
    after insert or delete or update of resource_id, blocks_availability, direction, expanded_from, expanded_until
    on calendar_connections
    for each row execute function sched_notify_busy_connection()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists calendar_connections_busy on calendar_connections`.execute(db);
  for (const table of [...TABLES, 'calendar_events']) {
    for (const change of ['inserted', 'updated', 'deleted']) {
      await sql`drop trigger if exists ${sql.raw(`${table}_busy_${change}`)} on ${sql.raw(table)}`.execute(
        db,
      );
    }
  }
  await sql`drop function if exists sched_notify_busy_connection()`.execute(db);
  await sql`drop function if exists sched_notify_busy_events()`.execute(db);
  await sql`drop function if exists sched_notify_busy_rows()`.execute(db);
}

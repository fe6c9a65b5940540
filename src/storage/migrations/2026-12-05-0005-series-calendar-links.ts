import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * The calendar outbox of recurring bookings: one row per series and connection, for providers that
 * take a series as one recurring event. Every write that marks an occurrence's link pending (a series
 * created or cancelled, one occurrence moved, edited or cancelled, a connection made) marks its
 * series' link pending too, in the same statement, through a trigger on booking_calendar_links: no
 * writer can forget it, and it commits or rolls back with the booking.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table booking_series_calendar_links (
      series_id uuid not null references booking_series on delete cascade,
      connection_id uuid not null references calendar_connections on delete cascade,
      organization_id uuid not null,
      remote_id text,
      etag text,
      sequence integer not null default 0,
      push_pending boolean not null default true,
      create_attempted boolean not null default false,
      push_attempts integer not null default 0,
      last_pushed_at timestamptz,
      last_error text,
      primary key (series_id, connection_id)
    )`.execute(db);
  await sql`create index booking_series_calendar_links_pending_idx
    on booking_series_calendar_links (connection_id) where push_pending`.execute(db);
  await sql`create index booking_series_calendar_links_remote_idx
    on booking_series_calendar_links (connection_id, remote_id) where remote_id is not null`.execute(db);
  await sql`
    create function mark_series_calendar_push() returns trigger language plpgsql as $$
    begin
      if new.push_pending then
        insert into booking_series_calendar_links (series_id, connection_id, organization_id)
        select b.series_id, new.connection_id, new.organization_id
        from bookings b where b.booking_id = new.booking_id and b.series_id is not null
        on conflict (series_id, connection_id) do update set push_pending = true, push_attempts = 0;
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger booking_calendar_links_series
      after insert or update of push_pending on booking_calendar_links
      for each row execute function mark_series_calendar_push()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists booking_calendar_links_series on booking_calendar_links`.execute(db);
  await sql`drop function if exists mark_series_calendar_push()`.execute(db);
  await sql`drop table if exists booking_series_calendar_links`.execute(db);
}

import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Booking pages (event types): what the public may book, on which resources, with which questions.
 * A booking made through a page keeps a row in `public_bookings`: the page it came from and the hash of
 * the attendee's manage token (the token itself is never stored). The row goes with the booking; the
 * page may be deleted while its bookings stay.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table booking_pages (
      booking_page_id uuid primary key,
      organization_id uuid not null references organizations on delete cascade,
      slug text not null,
      title text not null,
      description text,
      durations_minutes integer[] not null,
      resource_ids uuid[] not null,
      assign text not null check (assign in ('all', 'one')),
      interval_minutes integer,
      location jsonb,
      questions jsonb not null default '[]'::jsonb,
      requires_confirmation boolean not null default false,
      hold_minutes integer not null default 5,
      window_days integer not null default 60,
      published boolean not null default true,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      unique (organization_id, slug)
    )`.execute(db);
  await sql`create index booking_pages_list_idx on booking_pages (organization_id, created_at, booking_page_id)`.execute(
    db,
  );
  await sql`
    create table public_bookings (
      booking_id uuid primary key references bookings on delete cascade,
      organization_id uuid not null references organizations on delete cascade,
      booking_page_id uuid references booking_pages on delete set null,
      manage_token_hash text not null unique,
      attendee_time_zone text not null,
      duration_minutes integer not null,
      created_at timestamptz not null
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists public_bookings`.execute(db);
  await sql`drop table if exists booking_pages`.execute(db);
}

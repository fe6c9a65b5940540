import { sql } from 'kysely';
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A resource's link to one calendar at one provider.
  await sql`
    create table calendar_connections (
      connection_id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations on delete cascade,
      resource_id uuid not null references resources on delete cascade,
      provider text not null check (provider in ('google', 'outlook', 'caldav', 'ics')),
      calendar_id text not null,
      status text not null default 'active'
        check (status in ('active', 'pending_authorization', 'reauth_required', 'error')),
      direction text not null check (direction in ('two_way', 'push', 'pull')),
      frequency_minutes integer not null,
      realtime boolean not null,
      conflict_policy text not null
        check (conflict_policy in ('sched_wins', 'provider_wins', 'last_writer_wins', 'manual')),
      blocks_availability boolean not null,
      -- Passwords and tokens, sealed with the SecretBox (AES-256-GCM); never stored in the clear.
      credentials_sealed text,
      -- Non-secret provider details: the collection URL found by discovery, display name, ...
      settings jsonb not null default '{}',
      sync_cursor text,
      last_synced_at timestamptz,
      last_error text,
      failure_count integer not null default 0,
      next_sync_at timestamptz,
      -- Occurrences of recurring series are stored for [expanded_from, expanded_until); windows
      -- outside it are expanded on demand. Single events are always stored.
      expanded_from timestamptz,
      expanded_until timestamptz,
      -- Held by the process syncing this connection, so two never sync it at once.
      sync_lease_until timestamptz,
      -- Counts "sync now" requests (push notifications); one that arrives during a sync makes that
      -- sync leave the connection due, rather than plan the next sync for later.
      sync_requests integer not null default 0,
      -- Held by the process refreshing this connection's OAuth token, so a rotated refresh token is
      -- never raced by a second refresh with the old one.
      token_refresh_until timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (organization_id, provider, calendar_id, resource_id)
    )`.execute(db);
  await sql`create index calendar_connections_org_idx on calendar_connections (organization_id, created_at, connection_id)`.execute(
    db,
  );
  await sql`create index calendar_connections_resource_idx on calendar_connections (resource_id)`.execute(db);
  await sql`create index calendar_connections_due_idx on calendar_connections (next_sync_at)`.execute(db);

  // One row per object stored at the provider: a single event or a series with its overrides.
  await sql`
    create table calendar_events (
      event_id uuid primary key default gen_random_uuid(),
      connection_id uuid not null references calendar_connections on delete cascade,
      organization_id uuid not null,
      remote_id text not null,
      etag text,
      uid text,
      ics text not null,
      -- Set when the object is one Sched wrote for a booking (X-SCHED-BOOKING-ID).
      booking_id uuid,
      recurring boolean not null default false,
      title text,
      parse_error text,
      updated_at timestamptz not null default now(),
      unique (connection_id, remote_id)
    )`.execute(db);
  await sql`create index calendar_events_booking_idx on calendar_events (booking_id) where booking_id is not null`.execute(
    db,
  );

  // Occurrences, expanded from calendar_events up to the connection's expanded_until.
  await sql`
    create table calendar_occurrences (
      event_id uuid not null references calendar_events on delete cascade,
      connection_id uuid not null references calendar_connections on delete cascade,
      resource_id uuid not null,
      during tstzrange not null,
      all_day boolean not null,
      -- Opaque, not cancelled, not one of Sched's own bookings, and the connection blocks availability.
      blocks boolean not null,
      status text not null,
      transparency text not null,
      title text,
      recurrence_id text
    )`.execute(db);
  await sql`create index calendar_occurrences_busy_idx on calendar_occurrences using gist (resource_id, during) where blocks`.execute(
    db,
  );
  await sql`create index calendar_occurrences_event_idx on calendar_occurrences (event_id)`.execute(db);
  await sql`create index calendar_occurrences_list_idx on calendar_occurrences using gist (connection_id, during)`.execute(
    db,
  );

  // The push outbox, kept as state: a row per booking and connection, marked pending in the booking's
  // own transaction. A sync brings the provider's copy up to the booking's current version.
  await sql`
    create table booking_calendar_links (
      booking_id uuid not null references bookings on delete cascade,
      connection_id uuid not null references calendar_connections on delete cascade,
      organization_id uuid not null,
      remote_id text,
      etag text,
      sequence integer not null default 0,
      push_pending boolean not null default true,
      -- Set before the first create is sent: if its answer is lost, the object may exist unknown to us.
      create_attempted boolean not null default false,
      push_attempts integer not null default 0,
      last_pushed_at timestamptz,
      last_error text,
      primary key (booking_id, connection_id)
    )`.execute(db);
  await sql`create index booking_calendar_links_pending_idx on booking_calendar_links (connection_id) where push_pending`.execute(
    db,
  );

  await sql`
    create table calendar_conflicts (
      conflict_id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations on delete cascade,
      booking_id uuid not null references bookings on delete cascade,
      connection_id uuid not null references calendar_connections on delete cascade,
      sched_version jsonb not null,
      provider_version jsonb not null,
      status text not null default 'open' check (status in ('open', 'resolved')),
      resolution text check (resolution in ('sched', 'provider')),
      detected_at timestamptz not null default now(),
      resolved_at timestamptz
    )`.execute(db);
  await sql`create index calendar_conflicts_org_idx on calendar_conflicts (organization_id, status, detected_at, conflict_id)`.execute(
    db,
  );
  // One open conflict per booking and connection: a second change at the provider updates it.
  await sql`create unique index calendar_conflicts_open_idx on calendar_conflicts (booking_id, connection_id) where status = 'open'`.execute(
    db,
  );

  // Export feeds: the secret is in the URL and only its SHA-256 is stored.
  await sql`
    create table resource_feeds (
      feed_id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations on delete cascade,
      resource_id uuid not null references resources on delete cascade,
      secret_hash text not null unique,
      created_at timestamptz not null default now(),
      revoked_at timestamptz
    )`.execute(db);
  await sql`create index resource_feeds_resource_idx on resource_feeds (resource_id)`.execute(db);

  // An OAuth authorization in progress: created at connect, consumed once by the callback.
  await sql`
    create table oauth_authorizations (
      state_hash text primary key,
      connection_id uuid not null references calendar_connections on delete cascade,
      organization_id uuid not null,
      provider text not null,
      code_verifier_sealed text not null,
      redirect_uri text not null,
      expires_at timestamptz not null,
      created_at timestamptz not null default now()
    )`.execute(db);

  // Push channels: Google watch channels and Graph subscriptions, one live per connection.
  await sql`
    create table calendar_watches (
      connection_id uuid primary key references calendar_connections on delete cascade,
      provider text not null,
      channel_id text not null unique,
      resource_id text,
      -- The channel token / clientState is a secret of ours; only its SHA-256 is kept to check arrivals.
      secret_hash text not null,
      expires_at timestamptz not null,
      -- Set by a lifecycle notification or a failed renewal: replace the channel at the next chance.
      renew_now boolean not null default false,
      created_at timestamptz not null default now()
    )`.execute(db);

  // Wakes the sync scheduler of every process when a booking needs pushing.
  await sql`
    create function notify_calendar_push() returns trigger language plpgsql as $$
    begin
      if new.push_pending then
        perform pg_notify('sched_calendar_push', new.connection_id::text);
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger booking_calendar_links_notify
      after insert or update of push_pending on booking_calendar_links
      for each row execute function notify_calendar_push()`.execute(db);
}

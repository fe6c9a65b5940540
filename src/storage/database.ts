import type { ColumnType, Generated, Insertable, Kysely, Selectable } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export type OrganizationBranding = { logo_url?: string | null; accent_color?: string | null };

export type OrganizationsTable = {
  organization_id: Generated<string>;
  name: string;
  /** Lowercase letters, digits and `-`; unique; the organization's part of public URLs. */
  slug: string;
  /** The default zone of its public pages. */
  time_zone: ColumnType<string, string | undefined, string>;
  branding: ColumnType<OrganizationBranding, string | undefined, string>;
  created_at: CreatedAt;
};

export type BookingPageQuestion = {
  key: string;
  label: string;
  kind: 'text' | 'long_text' | 'email' | 'phone' | 'select' | 'checkbox';
  required: boolean;
  options?: string[];
};

export type BookingPageLocation = { kind: 'in_person' | 'phone' | 'video'; value?: string };

export type BookingPagesTable = {
  booking_page_id: string;
  organization_id: string;
  slug: string;
  title: string;
  description: string | null;
  durations_minutes: number[];
  resource_ids: string[];
  assign: 'all' | 'one';
  interval_minutes: number | null;
  location: ColumnType<BookingPageLocation | null, string | null, string | null>;
  questions: Json<BookingPageQuestion[]>;
  requires_confirmation: boolean;
  hold_minutes: number;
  window_days: number;
  published: boolean;
  created_at: ColumnType<Date, Date | string, Date | string>;
  updated_at: ColumnType<Date, Date | string, Date | string>;
};

export type PublicBookingsTable = {
  booking_id: string;
  organization_id: string;
  booking_page_id: string | null;
  /** SHA-256 of the attendee's manage token, hex. The token finds only a pending or confirmed booking. */
  manage_token_hash: string;
  attendee_time_zone: string;
  duration_minutes: number;
  created_at: ColumnType<Date, Date | string, Date | string>;
};

export type ApiKeysTable = {
  api_key_id: Generated<string>;
  organization_id: string;
  name: string;
  /** The first characters of the key, shown in listings so a person can tell keys apart. */
  key_prefix: string;
  /** SHA-256 of the whole key, hex. The key itself is never stored. */
  key_hash: string;
  scopes: string[];
  created_at: CreatedAt;
  revoked_at: Date | null;
};

export type ResourcesTable = {
  resource_id: Generated<string>;
  organization_id: string;
  name: string;
  kind: string;
  time_zone: string;
  email: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
  deleted_at: Date | null;
};

export type WallIntervalRow = [string, string];
export type StoredWeekly = Partial<Record<string, WallIntervalRow[]>>;
export type StoredOverride = { date: string; intervals: WallIntervalRow[] };

export type SchedulesTable = {
  resource_id: string;
  organization_id: string;
  time_zone: string;
  weekly: Json<StoredWeekly>;
  overrides: Json<StoredOverride[]>;
  buffer_before_minutes: number;
  buffer_after_minutes: number;
  minimum_notice_minutes: number;
  booking_horizon_days: number;
  updated_at: UpdatedAt;
};

export type Attendee = { email: string; name?: string | undefined };

export type BookingsTable = {
  booking_id: Generated<string>;
  organization_id: string;
  status: BookingStatusValue;
  /** In the order the client gave; booking_resources holds the same set for the constraint. */
  resource_ids: string[];
  start_time: ColumnType<Date, Date | string, Date | string>;
  end_time: ColumnType<Date, Date | string, Date | string>;
  title: string;
  description: string | null;
  attendees: Json<Attendee[]>;
  metadata: Json<Record<string, unknown>>;
  cancel_reason: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
  /** The series this booking is an occurrence of; null for a booking made on its own. */
  series_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** With series_id: the occurrence's start as the rule placed it (RFC 5545 RECURRENCE-ID), kept when moved. */
  recurrence_id: ColumnType<Date | null, Date | null | undefined, Date | null>;
};

/** A recurrence rule as stored with its series (and shown by the API). */
export type StoredRecurrence = {
  frequency: 'daily' | 'weekly' | 'monthly';
  interval: number;
  count: number | null;
  /** RFC 3339, UTC. */
  until: string | null;
  /** Weekly only: the weekdays, mon…sun. */
  by_weekday: string[] | null;
};

export type BookingSeriesTable = {
  series_id: string;
  organization_id: string;
  recurrence: Json<StoredRecurrence>;
  /** The IANA zone whose wall clock every occurrence keeps (the first resource's). */
  time_zone: string;
  created_at: CreatedAt;
};

export type BookingStatusValue = 'pending' | 'confirmed' | 'cancelled' | 'rejected';
/** The statuses that keep their time: the exclusion constraint covers these (and held rows). */
export const BUSY_STATUSES = ['pending', 'confirmed'] as const;

/** As a calendar sees a booking: a pending one already takes the time, a rejected one is gone. */
export function calendarStatus(status: BookingStatusValue): 'confirmed' | 'cancelled' {
  return status === 'pending' || status === 'confirmed' ? 'confirmed' : 'cancelled';
}

export type BookingResourcesTable = {
  /** Exactly one of booking_id and hold_id is set: a row keeps time for a booking or for a hold. */
  booking_id: string | null;
  hold_id: ColumnType<string | null, string | null | undefined, string | null>;
  resource_id: string;
  organization_id: string;
  /** tstzrange '[start,end)'; the exclusion constraint on it is the double-booking guarantee. */
  during: string;
  status: BookingStatusValue | 'held';
  /** A hold's expiry; from then on the row blocks nothing and the next writer deletes it. */
  expires_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** The booking's created_at, for round-robin fairness; null for a hold. */
  booked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
};

export type HoldsTable = {
  hold_id: string;
  organization_id: string;
  resource_ids: string[];
  start_time: ColumnType<Date, Date | string, Date | string>;
  end_time: ColumnType<Date, Date | string, Date | string>;
  expires_at: ColumnType<Date, Date | string, Date | string>;
  created_at: ColumnType<Date, Date | string, Date | string>;
};

export type IdempotencyKeysTable = {
  organization_id: string;
  idempotency_key: string;
  request_hash: string;
  state: 'in_progress' | 'done';
  response_status: number | null;
  response_body: string | null;
  created_at: CreatedAt;
  expires_at: Date;
};

export type AuditLogTable = {
  audit_id: Generated<string>;
  organization_id: string;
  at: CreatedAt;
  actor: string;
  action: string;
  target_type: string;
  target_id: string;
  details: Json<Record<string, unknown>>;
};

export type WebhookStatus = 'active' | 'paused' | 'disabled';

export type WebhookEndpointsTable = {
  webhook_id: Generated<string>;
  organization_id: string;
  /** The URL with its query values masked (`?token=***`), as views show it. */
  url: string;
  /** The URL as given, sealed: only deliveries use it. Null on rows from before sealing, until the start seals them. */
  url_sealed: string | null;
  events: string[];
  description: string | null;
  status: ColumnType<WebhookStatus, WebhookStatus | undefined, WebhookStatus>;
  disabled_reason: string | null;
  /** The signing secret, sealed with the encryption key: it must be read back to sign. */
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Date | null;
  failing_since: Date | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
};

export type WebhookEventsTable = {
  event_id: Generated<string>;
  organization_id: string;
  type: string;
  /** The exact JSON body sent to every subscriber, so retries send the same bytes. */
  payload: string;
  created_at: CreatedAt;
};

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export type WebhookDeliveriesTable = {
  delivery_id: Generated<string>;
  webhook_id: string;
  event_id: string;
  organization_id: string;
  event_type: string;
  status: ColumnType<DeliveryStatus, DeliveryStatus | undefined, DeliveryStatus>;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: Date | null;
  lease_until: Date | null;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_latency_ms: number | null;
  last_response_excerpt: string | null;
  last_error: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
};

export type CalendarProviderName = 'google' | 'outlook' | 'caldav' | 'ics';
export type ConnectionStatus = 'active' | 'pending_authorization' | 'reauth_required' | 'error';
export type SyncDirection = 'two_way' | 'push' | 'pull';
export type ConflictPolicy = 'sched_wins' | 'provider_wins' | 'last_writer_wins' | 'manual';

export type SyncWarnings = {
  items: { uid: string; reason: string }[];
  total: number;
  /** About the calendar as a whole, from its last full read (absent in rows written before). */
  calendar?: string[];
};

export type CalendarConnectionsTable = {
  connection_id: Generated<string>;
  organization_id: string;
  resource_id: string;
  provider: CalendarProviderName;
  calendar_id: string;
  status: ColumnType<ConnectionStatus, ConnectionStatus | undefined, ConnectionStatus>;
  direction: SyncDirection;
  frequency_minutes: number;
  realtime: boolean;
  conflict_policy: ConflictPolicy;
  blocks_availability: boolean;
  /** Passwords and tokens, sealed with the SecretBox. */
  credentials_sealed: string | null;
  settings: Json<Record<string, unknown>>;
  sync_cursor: string | null;
  last_synced_at: Date | null;
  last_error: string | null;
  failure_count: ColumnType<number, number | undefined, number>;
  next_sync_at: Date | null;
  expanded_from: Date | null;
  expanded_until: Date | null;
  sync_lease_until: Date | null;
  sync_requests: ColumnType<number, number | undefined, number>;
  token_refresh_until: Date | null;
  /** Events the last sync left out: the first ones with their UID and reason, and how many in all. */
  sync_warnings: ColumnType<SyncWarnings, string | undefined, string>;
  /** Syncs started and not finished since the last one that did: each is a process that died in it. */
  unfinished_syncs: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
};

export type CalendarEventsTable = {
  event_id: Generated<string>;
  connection_id: string;
  organization_id: string;
  remote_id: string;
  etag: string | null;
  uid: string | null;
  ics: string;
  booking_id: string | null;
  recurring: ColumnType<boolean, boolean | undefined, boolean>;
  title: string | null;
  parse_error: string | null;
  /** What reading the event left out, where the rest of it was read. */
  read_warning: ColumnType<string | null, string | null | undefined, string | null>;
  /** Where a series' occurrences can start at the earliest; null when unknown (unbounded). */
  series_from: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** Where a series' occurrences end at the latest; null for a series without end, or unknown. */
  series_until: ColumnType<Date | null, Date | null | undefined, Date | null>;
  updated_at: UpdatedAt;
};

export type CalendarOccurrencesTable = {
  event_id: string;
  connection_id: string;
  resource_id: string;
  /** tstzrange; written with sql`tstzrange(...)`. */
  during: string;
  all_day: boolean;
  blocks: boolean;
  status: string;
  transparency: string;
  title: string | null;
  recurrence_id: string | null;
};

/** What the calendar outbox keeps of one pushed object on one connection: where it is and how its push went. */
type PushLinkColumns = {
  connection_id: string;
  organization_id: string;
  remote_id: string | null;
  etag: string | null;
  sequence: ColumnType<number, number | undefined, number>;
  push_pending: ColumnType<boolean, boolean | undefined, boolean>;
  create_attempted: ColumnType<boolean, boolean | undefined, boolean>;
  push_attempts: ColumnType<number, number | undefined, number>;
  last_pushed_at: Date | null;
  last_error: string | null;
};

export type BookingCalendarLinksTable = { booking_id: string } & PushLinkColumns;

/** A series' outbox row for a connection whose provider takes a series as one recurring event. */
export type BookingSeriesCalendarLinksTable = { series_id: string } & PushLinkColumns;

export type CalendarConflictsTable = {
  conflict_id: Generated<string>;
  organization_id: string;
  booking_id: string;
  connection_id: string;
  sched_version: Json<Record<string, unknown>>;
  provider_version: Json<Record<string, unknown>>;
  status: ColumnType<'open' | 'resolved', 'open' | 'resolved' | undefined, 'open' | 'resolved'>;
  resolution: 'sched' | 'provider' | null;
  detected_at: CreatedAt;
  resolved_at: Date | null;
};

export type ResourceFeedsTable = {
  feed_id: Generated<string>;
  organization_id: string;
  resource_id: string;
  /** SHA-256 (hex) of the secret in the feed's URL; the secret itself is never stored. */
  secret_hash: string;
  created_at: CreatedAt;
  revoked_at: Date | null;
};

export type OAuthAuthorizationsTable = {
  state_hash: string;
  connection_id: string;
  organization_id: string;
  provider: CalendarProviderName;
  code_verifier_sealed: string;
  redirect_uri: string;
  expires_at: Date;
  created_at: CreatedAt;
};

export type CalendarWatchesTable = {
  connection_id: string;
  provider: CalendarProviderName;
  channel_id: string;
  resource_id: string | null;
  secret_hash: string;
  expires_at: Date;
  renew_now: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
};

export type Database = {
  organizations: OrganizationsTable;
  api_keys: ApiKeysTable;
  resources: ResourcesTable;
  schedules: SchedulesTable;
  bookings: BookingsTable;
  booking_series: BookingSeriesTable;
  booking_resources: BookingResourcesTable;
  holds: HoldsTable;
  booking_pages: BookingPagesTable;
  public_bookings: PublicBookingsTable;
  idempotency_keys: IdempotencyKeysTable;
  audit_log: AuditLogTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_events: WebhookEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  calendar_connections: CalendarConnectionsTable;
  calendar_events: CalendarEventsTable;
  calendar_occurrences: CalendarOccurrencesTable;
  booking_calendar_links: BookingCalendarLinksTable;
  booking_series_calendar_links: BookingSeriesCalendarLinksTable;
  calendar_conflicts: CalendarConflictsTable;
  resource_feeds: ResourceFeedsTable;
  oauth_authorizations: OAuthAuthorizationsTable;
  calendar_watches: CalendarWatchesTable;
};

export type Db = Kysely<Database>;
export type ResourceRow = Selectable<ResourcesTable>;
export type BookingRow = Selectable<BookingsTable>;
export type HoldRow = Selectable<HoldsTable>;
export type BookingPageRow = Selectable<BookingPagesTable>;
export type OrganizationRow = Selectable<OrganizationsTable>;
export type BookingSeriesRow = Selectable<BookingSeriesTable>;
export type ScheduleRow = Selectable<SchedulesTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewAuditEntry = Insertable<AuditLogTable>;
export type ConnectionRow = Selectable<CalendarConnectionsTable>;

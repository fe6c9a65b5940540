import type { AccessTokenSource, CalendarProvider } from '../port/provider.js';
import type { OAuthClient } from '../../integrations/index.js';
import type { ProviderError } from '../../integrations/index.js';
import type { SecretBox } from '../../security/secret-box.js';
import type { CalendarParser } from '../parsing/parser.js';
import type { CalendarLimits } from '../parsing/expand.js';
import type { DatabaseKind } from '../../storage/open-database.js';
import type {
  CalendarProviderName,
  ConflictPolicy,
  ConnectionRow,
  ConnectionStatus,
  SyncDirection,
} from '../../storage/database.js';
import { ConnectionTokens, type OAuthCredentials } from './tokens.js';
import { stopWatch } from './watches.js';
import type { ServiceDeps } from '../../services/context.js';
import { ErrorCode, SchedError, validationError } from '../../services/errors.js';

/*
 * What a calendar connection is (settings, views, the connector each provider plugs in) and how a
 * provider is opened for one: calendar-connections.ts holds the use cases on top of it.
 */

export { PROVIDER_DISPLAY_NAMES, PROVIDER_NAMES } from '../../integrations/index.js';
export { pushUnavailableReason, pushView, type PushView } from '../policy/push-availability.js';
import { PROVIDER_DISPLAY_NAMES } from '../../integrations/index.js';
import { pushView, type PushView } from '../policy/push-availability.js';

export type SyncSettings = {
  direction: SyncDirection;
  frequency_minutes: number;
  realtime: boolean;
  conflict_policy: ConflictPolicy;
  blocks_availability: boolean;
};

/**
 * Sched is the system of record for bookings, so by default a change made at the provider to a
 * booking's event is written back over (sched_wins); teams that want the calendar to lead choose
 * provider_wins, last_writer_wins or manual.
 */
export const DEFAULT_SYNC: SyncSettings = {
  direction: 'two_way',
  frequency_minutes: 15,
  realtime: true,
  conflict_policy: 'sched_wins',
  blocks_availability: true,
};

/** What a connector found and checked at connect time. */
export type PreparedConnection = {
  /** The provider's id of the calendar: a CalDAV collection URL, a Google calendar id. */
  calendarId: string;
  /** Non-secret details kept in the clear (collection URL, display name). */
  settings: Record<string, unknown>;
  /** Secrets, sealed before they are stored. */
  credentials: Record<string, unknown>;
};

/** One per provider: checks what a user gave at connect, and opens the provider for a sync. */
export interface Connector {
  readonly readOnly: boolean;
  /** OAuth providers: the client that authorizes and refreshes. */
  readonly oauth?: OAuthClient;
  prepare(input: Record<string, unknown>): Promise<PreparedConnection>;
  open(
    settings: Record<string, unknown>,
    credentials: Record<string, unknown>,
    context?: { tokens?: AccessTokenSource },
  ): CalendarProvider;
}

export type Connectors = Partial<Record<CalendarProviderName, Connector>>;

export type CalendarDeps = ServiceDeps & {
  secretBox: SecretBox;
  connectors: Connectors;
  /** Parses and expands calendars off the event loop. */
  parser: CalendarParser;
  /** Which database: the embedded one is written in shorter transactions. PostgreSQL when left out. */
  databaseKind?: DatabaseKind;
  /** What one sync may spend on a calendar; CALENDAR_LIMITS when left out. */
  calendarLimits?: CalendarLimits;
  /** SCHED_PUBLIC_URL: where providers send push notifications and users return after consent. */
  publicUrl?: string | undefined;
};

export type ConnectionView = {
  connection_id: string;
  provider: CalendarProviderName;
  resource_id: string;
  calendar_id: string;
  status: ConnectionStatus;
  sync: SyncSettings;
  last_synced_at: string | null;
  last_error: string | null;
  /** Events the last sync could not read, or only in part (the first 50), with their UID and why. */
  warnings: { uid: string; reason: string }[];
  /** How many events have warnings in all. */
  warning_count: number;
  /** About the calendar as a whole, from its last full read. */
  calendar_warnings: string[];
  display_name: string | null;
  /** Whether changes at the provider reach us by push, and why not where they cannot. */
  push: PushView;
  created_at: string;
  updated_at: string;
};

export function connectionView(row: ConnectionRow, publicUrl: string | undefined): ConnectionView {
  const settings = row.settings;
  return {
    connection_id: row.connection_id,
    provider: row.provider,
    resource_id: row.resource_id,
    calendar_id: row.calendar_id,
    status: row.status,
    sync: {
      direction: row.direction,
      frequency_minutes: row.frequency_minutes,
      realtime: row.realtime,
      conflict_policy: row.conflict_policy,
      blocks_availability: row.blocks_availability,
    },
    last_synced_at: row.last_synced_at?.toISOString() ?? null,
    last_error: row.last_error,
    warnings: row.sync_warnings.items,
    warning_count: row.sync_warnings.total,
    calendar_warnings: row.sync_warnings.calendar ?? [],
    display_name: typeof settings.display_name === 'string' ? settings.display_name : null,
    push: pushView(row.provider, row.realtime, publicUrl),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/**
 * What a user reads of a provider failure: the provider's name, the failure policy's explanation
 * when it gave one (a calendar that is gone), and the provider's own words.
 */
export function failureMessage(
  provider: CalendarProviderName,
  providerMessage: string,
  explanation?: string,
): string {
  const name = PROVIDER_DISPLAY_NAMES[provider];
  return explanation ? `${name}: ${explanation} (${providerMessage})` : `${name}: ${providerMessage}`;
}

/**
 * Maps a provider failure onto the contract's 502 PROVIDER_* problems. `refusedField` names the input
 * field of a URL the user gave at connect: this server refusing that address is the user's 400. Any
 * other refusal (an address the provider pointed us to, or one that became internal by sync time) is
 * the provider side failing, a 502.
 */
export function providerFailure(
  error: ProviderError,
  provider: CalendarProviderName,
  explanation?: string,
  refusedField?: string,
): SchedError {
  if (error.code === 'URL_REFUSED' && refusedField) return validationError(refusedField, error.message);
  const code =
    {
      AUTH_FAILED: ErrorCode.PROVIDER_AUTH_FAILED,
      FORBIDDEN: ErrorCode.PROVIDER_FORBIDDEN,
      NOT_FOUND: ErrorCode.PROVIDER_NOT_FOUND,
      UNAVAILABLE: ErrorCode.PROVIDER_UNAVAILABLE,
      TIMEOUT: ErrorCode.PROVIDER_TIMEOUT,
      NETWORK: ErrorCode.PROVIDER_NETWORK,
      RATE_LIMITED: ErrorCode.PROVIDER_RATE_LIMITED,
      QUOTA_EXCEEDED: ErrorCode.PROVIDER_QUOTA_EXCEEDED,
      BAD_RESPONSE: ErrorCode.PROVIDER_BAD_RESPONSE,
      REJECTED: ErrorCode.PROVIDER_REJECTED,
    }[error.code as string] ?? ErrorCode.PROVIDER_ERROR;
  return new SchedError(code, failureMessage(provider, error.message, explanation));
}

export function connectorFor(deps: CalendarDeps, provider: CalendarProviderName): Connector {
  const connector = deps.connectors[provider];
  if (!connector) {
    throw validationError('provider', `${PROVIDER_DISPLAY_NAMES[provider]} is not configured on this server`);
  }
  return connector;
}

export function resolveSync(
  provider: CalendarProviderName,
  readOnly: boolean,
  given: Partial<SyncSettings> | undefined,
  base: SyncSettings = DEFAULT_SYNC,
): SyncSettings {
  const sync = {
    ...base,
    ...(readOnly && !given?.direction ? { direction: 'pull' as const } : {}),
    ...given,
  };
  if (readOnly && sync.direction !== 'pull') {
    throw validationError(
      'sync.direction',
      `${PROVIDER_DISPLAY_NAMES[provider]} is read-only: the direction can only be "pull"`,
    );
  }
  return sync;
}

/**
 * What disconnecting owes the provider, best effort (the connection goes either way): its push channel
 * stopped, and its grant revoked where the provider has a revocation endpoint (Google).
 */
export async function releaseAtProvider(deps: CalendarDeps, row: ConnectionRow): Promise<void> {
  if (!row.credentials_sealed) return;
  try {
    await stopWatch(deps.db, row.connection_id, openProvider(deps, row));
  } catch {
    // Unreachable provider or refused token: the channel expires by itself.
  }
  const client = deps.connectors[row.provider]?.oauth;
  if (!client) return;
  try {
    const credentials = deps.secretBox.openJson<OAuthCredentials>(row.credentials_sealed);
    await client.revoke(credentials.refresh_token ?? credentials.access_token);
  } catch {
    // Already revoked or expired: nothing left to revoke.
  }
}

export function openProvider(deps: CalendarDeps, row: ConnectionRow): CalendarProvider {
  const connector = connectorFor(deps, row.provider);
  if (row.status === 'pending_authorization' || !row.credentials_sealed) {
    throw new SchedError(
      ErrorCode.CALENDAR_NOT_ACTIVE,
      `${PROVIDER_DISPLAY_NAMES[row.provider]} ${row.calendar_id} has not been authorized yet`,
    );
  }
  const credentials = deps.secretBox.openJson<Record<string, unknown>>(row.credentials_sealed);
  const tokens = connector.oauth
    ? new ConnectionTokens(
        deps.db,
        deps.secretBox,
        row.connection_id,
        connector.oauth,
        credentials as unknown as OAuthCredentials,
      )
    : undefined;
  return connector.open(
    { ...row.settings, calendar_id: row.calendar_id },
    credentials,
    tokens ? { tokens } : {},
  );
}

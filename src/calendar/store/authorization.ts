import { createHash } from 'node:crypto';
import { ProviderError } from '../../integrations/index.js';
import type { CalendarProviderName } from '../../storage/database.js';
import { recordAudit } from '../../services/audit.js';
import {
  connectorFor,
  PROVIDER_DISPLAY_NAMES,
  providerFailure,
  type CalendarDeps,
  type ConnectionView,
  type SyncSettings,
} from './connection-model.js';
import { connectionActivated } from './activation.js';
import { credentialsFromTokens } from './tokens.js';
import type { Actor } from '../../services/context.js';
import { ErrorCode, SchedError, validationError } from '../../services/errors.js';

/** How long a user has to consent at the provider and come back. */
export const AUTHORIZATION_TTL_MS = 15 * 60_000;

function hashState(state: string): string {
  return createHash('sha256').update(state).digest('hex');
}

export function callbackUrl(publicUrl: string, provider: CalendarProviderName): string {
  return `${publicUrl}/oauth/${provider}/callback`;
}

export type AuthorizationView = {
  authorization_url: string;
  state: string;
  connection_id: string;
  expires_at: string;
};

/**
 * Starts an OAuth connection: a connection in `pending_authorization` and a single-use record of the
 * state and PKCE verifier (sealed). Connecting again before consenting reuses the pending connection.
 */
export async function startAuthorization(
  deps: CalendarDeps,
  actor: Actor,
  provider: CalendarProviderName,
  input: { resource_id: string; calendar_id?: string | undefined },
  sync: SyncSettings,
  publicUrl: string,
): Promise<AuthorizationView> {
  const connector = connectorFor(deps, provider);
  const client = connector.oauth;
  if (!client?.configured) {
    const prefix = provider === 'google' ? 'SCHED_GOOGLE' : 'SCHED_OUTLOOK';
    throw validationError(
      'oauth_token',
      `${PROVIDER_DISPLAY_NAMES[provider]} sign-in is not configured on this server (${prefix}_CLIENT_ID and ` +
        `${prefix}_CLIENT_SECRET); pass oauth_token to connect with a token you already have`,
    );
  }
  const redirectUri = callbackUrl(publicUrl, provider);
  const started = await client.start(redirectUri);
  const now = deps.clock();
  const calendarId = input.calendar_id ?? 'primary';
  return deps.db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom('calendar_connections')
      .selectAll()
      .where('organization_id', '=', actor.organizationId)
      .where('provider', '=', provider)
      .where('calendar_id', '=', calendarId)
      .where('resource_id', '=', input.resource_id)
      .forUpdate()
      .executeTakeFirst();
    if (existing && existing.status !== 'pending_authorization') {
      throw new SchedError(
        ErrorCode.CALENDAR_ALREADY_CONNECTED,
        `${PROVIDER_DISPLAY_NAMES[provider]} ${calendarId} is already connected to resource ${input.resource_id}`,
      );
    }
    const connection =
      existing ??
      (await trx
        .insertInto('calendar_connections')
        .values({
          organization_id: actor.organizationId,
          resource_id: input.resource_id,
          provider,
          calendar_id: calendarId,
          status: 'pending_authorization',
          direction: sync.direction,
          frequency_minutes: sync.frequency_minutes,
          realtime: sync.realtime,
          conflict_policy: sync.conflict_policy,
          blocks_availability: sync.blocks_availability,
          settings: JSON.stringify({}),
        })
        .returningAll()
        .executeTakeFirstOrThrow());
    await trx
      .deleteFrom('oauth_authorizations')
      .where('connection_id', '=', connection.connection_id)
      .execute();
    const expiresAt = new Date(now + AUTHORIZATION_TTL_MS);
    await trx
      .insertInto('oauth_authorizations')
      .values({
        state_hash: hashState(started.state),
        connection_id: connection.connection_id,
        organization_id: actor.organizationId,
        provider,
        code_verifier_sealed: deps.secretBox.seal(started.codeVerifier),
        redirect_uri: redirectUri,
        expires_at: expiresAt,
      })
      .execute();
    await recordAudit(trx, actor, {
      action: 'calendar.authorization_started',
      targetType: 'calendar_connection',
      targetId: connection.connection_id,
      details: { provider, calendar_id: calendarId, resource_id: input.resource_id },
    });
    return {
      authorization_url: started.url,
      state: started.state,
      connection_id: connection.connection_id,
      expires_at: expiresAt.toISOString(),
    };
  });
}

/**
 * The user's return from the provider. The state must be one we issued for this provider and not yet
 * used or expired; the code is exchanged with the PKCE verifier. The record is consumed whatever the
 * outcome, so a state can never be replayed.
 */
export async function finishAuthorization(
  deps: CalendarDeps,
  provider: CalendarProviderName,
  query: Record<string, string | undefined>,
): Promise<{ message: string; connection: ConnectionView }> {
  const state = query.state;
  if (!state) {
    throw new SchedError(ErrorCode.OAUTH_STATE_INVALID, 'the callback carries no state', {
      errors: [{ field: 'state', message: 'is required' }],
    });
  }
  const record = await deps.db
    .deleteFrom('oauth_authorizations')
    .where('state_hash', '=', hashState(state))
    .where('provider', '=', provider)
    .returningAll()
    .executeTakeFirst();
  const now = deps.clock();
  if (!record || record.expires_at.getTime() < now) {
    throw new SchedError(
      ErrorCode.OAUTH_STATE_INVALID,
      'this authorization is unknown, already used or expired; connect again',
      { errors: [{ field: 'state', message: 'is unknown, already used or expired' }] },
    );
  }
  const name = PROVIDER_DISPLAY_NAMES[provider];
  if (query.error) {
    const reason = query.error_description ? `${query.error}: ${query.error_description}` : query.error;
    throw new SchedError(ErrorCode.OAUTH_DENIED, `${name} did not authorize the connection (${reason})`);
  }
  const client = connectorFor(deps, provider).oauth;
  if (!client) throw validationError('provider', `${name} sign-in is not configured on this server`);
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, value);
  let credentials;
  try {
    const tokens = await client.finish(
      params,
      state,
      deps.secretBox.open(record.code_verifier_sealed),
      record.redirect_uri,
    );
    credentials = credentialsFromTokens(tokens);
  } catch (error) {
    if (error instanceof ProviderError) throw providerFailure(error, provider);
    throw error;
  }
  return deps.db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('calendar_connections')
      .set({
        status: 'active',
        credentials_sealed: deps.secretBox.sealJson(credentials),
        next_sync_at: new Date(now),
        last_error: null,
        failure_count: 0,
        updated_at: new Date(now),
      })
      .where('connection_id', '=', record.connection_id)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new SchedError(ErrorCode.CALENDAR_NOT_FOUND, 'the connection was removed meanwhile');
    const actor = { organizationId: row.organization_id, label: `oauth:${provider}` };
    const view = await connectionActivated(trx, actor, row, now, deps.publicUrl);
    return { message: `${name} connected successfully.`, connection: view };
  });
}

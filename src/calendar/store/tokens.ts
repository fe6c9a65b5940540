import type { AccessTokenSource } from '../port/provider.js';
import type { OAuthClient, TokenSet } from '../../integrations/index.js';
import { ProviderError } from '../../integrations/index.js';
import type { SecretBox } from '../../security/secret-box.js';
import type { Db } from '../../storage/database.js';

/** What an OAuth connection keeps, sealed, in credentials_sealed. */
export type OAuthCredentials = {
  access_token: string;
  refresh_token: string | null;
  /** Epoch ms; null when unknown (then the token is used until a 401 says otherwise). */
  expires_at: number | null;
};

/** Refreshed this long before expiry, so no request goes out with a token about to lapse. */
export const REFRESH_MARGIN_MS = 5 * 60_000;
const REFRESH_LEASE_MS = 30_000;
const WAIT_FOR_OTHER_REFRESH_MS = 15_000;

export function credentialsFromTokens(tokens: TokenSet, previous?: OAuthCredentials): OAuthCredentials {
  return {
    access_token: tokens.accessToken,
    // A provider that does not rotate sends no new refresh token: the old one stays valid.
    refresh_token: tokens.refreshToken ?? previous?.refresh_token ?? null,
    expires_at: tokens.expiresAt,
  };
}

/** Failures of the refresh itself, so the sync tells them from a failure of the calendar. */
const refreshFailures = new WeakSet<object>();

/** Whether `error` came from refreshing the access token (a refused grant, an unreachable token endpoint). */
export function failedAtTokenRefresh(error: unknown): boolean {
  return typeof error === 'object' && error !== null && refreshFailures.has(error);
}

function fresh(credentials: OAuthCredentials, now: number): boolean {
  return credentials.expires_at === null || credentials.expires_at - now > REFRESH_MARGIN_MS;
}

/**
 * The access token of one connection. A refresh takes a lease on the connection row first, so across
 * every process only one refreshes a connection at a time: with rotating refresh tokens (Microsoft) a
 * second refresh with the old token could be refused, and the rotated token is stored before use.
 * Token lifetimes are real time, whatever clock the rest of the service is given.
 */
export class ConnectionTokens implements AccessTokenSource {
  #current: OAuthCredentials;

  constructor(
    private readonly db: Db,
    private readonly secretBox: SecretBox,
    private readonly connectionId: string,
    private readonly client: OAuthClient | undefined,
    initial: OAuthCredentials,
  ) {
    this.#current = initial;
  }

  async get(options: { forceRefresh?: boolean } = {}): Promise<string> {
    if (!options.forceRefresh && fresh(this.#current, Date.now())) return this.#current.access_token;
    try {
      this.#current = await this.#refresh(this.#current.access_token);
    } catch (error) {
      if (typeof error === 'object' && error !== null) refreshFailures.add(error);
      throw error;
    }
    return this.#current.access_token;
  }

  async #refresh(stale: string): Promise<OAuthCredentials> {
    const started = Date.now();
    for (;;) {
      const now = Date.now();
      const claimed = await this.db
        .updateTable('calendar_connections')
        .set({ token_refresh_until: new Date(now + REFRESH_LEASE_MS) })
        .where('connection_id', '=', this.connectionId)
        .where((eb) =>
          eb.or([eb('token_refresh_until', 'is', null), eb('token_refresh_until', '<', new Date(now))]),
        )
        .returning('credentials_sealed')
        .executeTakeFirst();
      if (claimed) return this.#refreshHolding(claimed.credentials_sealed, stale);
      const other = await this.#read();
      if (other && other.access_token !== stale && fresh(other, Date.now())) return other;
      if (Date.now() - started > WAIT_FOR_OTHER_REFRESH_MS) {
        throw new ProviderError('UNAVAILABLE', 'another process is refreshing this connection’s token');
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async #refreshHolding(sealed: string | null, stale: string): Promise<OAuthCredentials> {
    try {
      const stored = sealed ? this.secretBox.openJson<OAuthCredentials>(sealed) : null;
      // Someone else refreshed between our read and our lease: use theirs.
      if (stored && stored.access_token !== stale && fresh(stored, Date.now())) return stored;
      if (!stored?.refresh_token) {
        throw new ProviderError('AUTH_FAILED', 'the access token expired and there is no refresh token');
      }
      if (!this.client?.configured) {
        throw new ProviderError('AUTH_FAILED', 'the access token expired and no OAuth client is configured');
      }
      const next = credentialsFromTokens(await this.client.refresh(stored.refresh_token), stored);
      await this.db
        .updateTable('calendar_connections')
        .set({ credentials_sealed: this.secretBox.sealJson(next), token_refresh_until: null })
        .where('connection_id', '=', this.connectionId)
        .execute();
      return next;
    } finally {
      await this.db
        .updateTable('calendar_connections')
        .set({ token_refresh_until: null })
        .where('connection_id', '=', this.connectionId)
        .execute();
    }
  }

  async #read(): Promise<OAuthCredentials | null> {
    const row = await this.db
      .selectFrom('calendar_connections')
      .select('credentials_sealed')
      .where('connection_id', '=', this.connectionId)
      .executeTakeFirst();
    return row?.credentials_sealed ? this.secretBox.openJson<OAuthCredentials>(row.credentials_sealed) : null;
  }
}

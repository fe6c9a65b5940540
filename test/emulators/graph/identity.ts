import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { GraphError } from './graph-error.js';
import type { Ctx, Reply } from './server.js';

export type OAuthClient = { clientId: string; clientSecret: string | null; redirectUris: string[] | null };

export type IdentityOptions = {
  clients: OAuthClient[];
  accessTokenTtlSeconds: number;
  /** 90 days for confidential clients (not sliding here: chained tokens keep the first expiry). */
  refreshTokenTtlSeconds: number;
  codeTtlSeconds: number;
  /** The reference says old refresh tokens keep working after rotation; true makes them stop. */
  rotationRevokesOld: boolean;
};

export const DEFAULT_CLIENT: OAuthClient = {
  clientId: '6f0e6a8c-5c3b-4f0e-9f52-0d1e2a3b4c5d',
  clientSecret: 'emulator-secret~not-a-real-one',
  redirectUris: null,
};

type Grant = { clientId: string; scopes: string[]; expiresAt: number };
type Code = Grant & { redirectUri: string; challenge: string | null; method: string; used: boolean };
type Refresh = Grant & { revoked: boolean };

const GRAPH = 'https://graph.microsoft.com/';
const KNOWN_SCOPES = [
  'offline_access',
  'openid',
  'profile',
  'email',
  'User.Read',
  'Calendars.Read',
  'Calendars.ReadWrite',
  'Calendars.Read.Shared',
  'Calendars.ReadWrite.Shared',
  '.default',
];

function normaliseScope(scope: string): string | null {
  const bare = scope.startsWith(GRAPH) ? scope.slice(GRAPH.length) : scope;
  return KNOWN_SCOPES.find((known) => known.toLowerCase() === bare.toLowerCase()) ?? null;
}

const OIDC = new Set(['offline_access', 'openid', 'profile', 'email']);

function grantedScopeText(scopes: string[]): string {
  return scopes.map((s) => (OIDC.has(s) ? s : `${GRAPH}${s}`)).join(' ');
}

function base64url(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** The Microsoft identity platform v2 endpoints: authorize with PKCE, token with refresh rotation. */
export class Identity {
  readonly #codes = new Map<string, Code>();
  readonly #access = new Map<string, Grant>();
  readonly #refresh = new Map<string, Refresh>();
  /** The next authorize answers with this error instead of a code (the user said no). */
  denyNext: { error: string; description: string } | null = null;

  constructor(
    public options: IdentityOptions,
    private readonly clock: () => number,
  ) {}

  #client(clientId: string | null): OAuthClient | null {
    return this.options.clients.find((c) => c.clientId === clientId) ?? null;
  }

  authorize(ctx: Ctx): Reply {
    const q = ctx.query;
    const client = this.#client(q.get('client_id'));
    const redirectUri = q.get('redirect_uri');
    // Like the real page: a bad client or redirect URI is shown to the user, never redirected to.
    if (!client)
      return this.#page(
        400,
        `AADSTS700016: Application with identifier '${q.get('client_id')}' was not found.`,
      );
    if (
      !redirectUri ||
      !/^https?:\/\//.test(redirectUri) ||
      (client.redirectUris && !client.redirectUris.includes(redirectUri))
    ) {
      return this.#page(
        400,
        `AADSTS50011: The redirect URI '${redirectUri}' does not match the redirect URIs configured.`,
      );
    }
    const back = (params: Record<string, string>): Reply => {
      const target = new URL(redirectUri);
      for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
      const state = q.get('state');
      if (state !== null) target.searchParams.set('state', state);
      return { status: 302, headers: { location: target.toString() } };
    };
    if (q.get('response_type') !== 'code') {
      return back({
        error: 'unsupported_response_type',
        error_description: 'AADSTS700054: response_type is not supported.',
      });
    }
    const requested = (q.get('scope') ?? '').split(/\s+/).filter(Boolean);
    const scopes = requested.map(normaliseScope);
    if (requested.length === 0 || scopes.includes(null)) {
      return back({
        error: 'invalid_scope',
        error_description: `AADSTS70011: The provided value for scope '${q.get('scope')}' is not valid.`,
      });
    }
    const challenge = q.get('code_challenge');
    const method = q.get('code_challenge_method') ?? 'plain';
    if (challenge !== null && method !== 'S256' && method !== 'plain') {
      return back({
        error: 'invalid_request',
        error_description: 'AADSTS501491: Invalid code_challenge_method.',
      });
    }
    if (this.denyNext) {
      const { error, description } = this.denyNext;
      this.denyNext = null;
      return back({ error, error_description: description });
    }
    const code = `1.AQ${base64url(48)}`;
    this.#codes.set(code, {
      clientId: client.clientId,
      scopes: scopes as string[],
      redirectUri,
      challenge,
      method,
      used: false,
      expiresAt: this.clock() + this.options.codeTtlSeconds * 1000,
    });
    return back({ code, session_state: randomUUID() });
  }

  token(ctx: Ctx): Reply {
    const form = new URLSearchParams(ctx.body);
    const basic = /^Basic\s+(.+)$/i.exec(String(ctx.headers.authorization ?? ''))?.[1];
    const [basicId, basicSecret] = basic
      ? Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent)
      : [];
    const client = this.#client(form.get('client_id') ?? basicId ?? null);
    if (!client)
      return this.#error(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${form.get('client_id')}' was not found in the directory.`,
      );
    const secret = form.get('client_secret') ?? basicSecret ?? null;
    if (client.clientSecret !== null) {
      if (secret === null)
        return this.#error(
          401,
          'invalid_client',
          7000218,
          "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
      if (secret !== client.clientSecret)
        return this.#error(401, 'invalid_client', 7000215, 'Invalid client secret provided.');
    }
    const grantType = form.get('grant_type');
    if (grantType === 'authorization_code') return this.#redeemCode(form, client);
    if (grantType === 'refresh_token') return this.#redeemRefresh(form, client);
    return this.#error(
      400,
      'unsupported_grant_type',
      70003,
      `The app requested an unsupported grant type '${grantType}'.`,
    );
  }

  #redeemCode(form: URLSearchParams, client: OAuthClient): Reply {
    const code = this.#codes.get(form.get('code') ?? '');
    if (!code || code.clientId !== client.clientId)
      return this.#error(400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
    if (code.used)
      return this.#error(
        400,
        'invalid_grant',
        54005,
        'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
      );
    if (code.expiresAt <= this.clock())
      return this.#error(
        400,
        'invalid_grant',
        70008,
        'The provided authorization code or refresh token has expired due to inactivity.',
      );
    if (form.get('redirect_uri') !== code.redirectUri)
      return this.#error(
        400,
        'invalid_grant',
        500117,
        'The reply uri specified in the request does not match the reply uri used in the authorization request.',
      );
    if (code.challenge !== null) {
      const verifier = form.get('code_verifier');
      if (!verifier)
        return this.#error(
          400,
          'invalid_request',
          50148,
          'The code_verifier is required when a code_challenge was supplied.',
        );
      const computed =
        code.method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
      if (computed !== code.challenge)
        return this.#error(
          400,
          'invalid_grant',
          501481,
          'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
        );
    }
    code.used = true;
    return { status: 200, json: this.issue(client.clientId, code.scopes, null) };
  }

  #redeemRefresh(form: URLSearchParams, client: OAuthClient): Reply {
    const token = form.get('refresh_token') ?? '';
    const grant = this.#refresh.get(token);
    if (!grant || grant.clientId !== client.clientId)
      return this.#error(400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
    if (grant.revoked)
      return this.#error(
        400,
        'invalid_grant',
        50173,
        'The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.',
      );
    if (grant.expiresAt <= this.clock())
      return this.#error(400, 'invalid_grant', 700082, 'The refresh token has expired due to inactivity.');
    const asked = form.get('scope')?.split(/\s+/).filter(Boolean).map(normaliseScope);
    const scopes =
      asked && !asked.includes(null)
        ? grant.scopes.filter((s) => asked.includes(s) || s === 'offline_access')
        : grant.scopes;
    if (this.options.rotationRevokesOld) grant.revoked = true;
    return { status: 200, json: this.issue(client.clientId, scopes, grant.expiresAt) };
  }

  /** A token response; a refresh token only with offline_access. */
  issue(
    clientId: string,
    scopes: string[],
    refreshExpiresAt: number | null,
    ttlSeconds?: number,
  ): Record<string, unknown> {
    const now = this.clock();
    const ttl = ttlSeconds ?? this.options.accessTokenTtlSeconds;
    const accessToken = `eyJ0eXAiOiJKV1QiLCJub25jZSI6${base64url(96)}`;
    this.#access.set(accessToken, { clientId, scopes, expiresAt: now + ttl * 1000 });
    const response: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: grantedScopeText(scopes),
      expires_in: ttl,
      ext_expires_in: ttl,
      access_token: accessToken,
    };
    if (scopes.includes('offline_access')) {
      const refreshToken = `1.AQ${base64url(120)}`;
      const expiresAt = refreshExpiresAt ?? now + this.options.refreshTokenTtlSeconds * 1000;
      this.#refresh.set(refreshToken, { clientId, scopes, expiresAt, revoked: false });
      response.refresh_token = refreshToken;
    }
    return response;
  }

  expireAccessTokens(): void {
    const now = this.clock();
    for (const grant of this.#access.values()) grant.expiresAt = Math.min(grant.expiresAt, now - 1);
  }

  /** Revokes one refresh token, or all of them (revokeSignInSessions, a password change). */
  revokeRefreshTokens(token?: string): number {
    let count = 0;
    for (const [value, grant] of this.#refresh) {
      if (token === undefined || value === token) {
        grant.revoked = true;
        count++;
      }
    }
    return count;
  }

  /** Checks the bearer token of a Graph call; writes need Calendars.ReadWrite. */
  authenticate(header: string | undefined, write: boolean): void {
    const token = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    const unauthorized = (message: string) =>
      new GraphError(401, 'InvalidAuthenticationToken', message, {
        'www-authenticate':
          'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
      });
    if (!token) throw unauthorized('Access token is empty.');
    const grant = this.#access.get(token);
    if (!grant) throw unauthorized('IDX14100: JWT is not well formed, there are no dots (.).');
    if (grant.expiresAt <= this.clock())
      throw unauthorized('Lifetime validation failed, the token is expired.');
    const allowed = write ? ['Calendars.ReadWrite'] : ['Calendars.Read', 'Calendars.ReadWrite', '.default'];
    if (!grant.scopes.some((s) => allowed.includes(s) || s === '.default')) {
      throw new GraphError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    }
  }

  #error(status: number, error: string, code: number, text: string): Reply {
    const traceId = randomUUID();
    const correlationId = randomUUID();
    const timestamp = new Date(this.clock())
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d{3}Z$/, 'Z');
    return {
      status,
      json: {
        error,
        error_description: `AADSTS${code}: ${text} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
        error_codes: [code],
        timestamp,
        trace_id: traceId,
        correlation_id: correlationId,
        error_uri: `https://login.microsoftonline.com/error?code=${code}`,
      },
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store, no-cache' },
    };
  }

  #page(status: number, message: string): Reply {
    return {
      status,
      text: `Sign in error\n\n${message}\n`,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    };
  }
}

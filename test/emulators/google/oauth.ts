import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { errors } from './errors.js';

const SCOPE_PREFIX = 'https://www.googleapis.com/auth/';
const CALENDAR_SCOPES = [
  'calendar',
  'calendar.readonly',
  'calendar.events',
  'calendar.events.readonly',
  'calendar.events.owned',
  'calendar.events.owned.readonly',
  'calendar.events.freebusy',
  'calendar.freebusy',
  'calendar.events.public.readonly',
  'calendar.calendarlist',
  'calendar.calendarlist.readonly',
  'calendar.calendars',
  'calendar.calendars.readonly',
  'calendar.acls',
  'calendar.acls.readonly',
  'calendar.app.created',
  'calendar.settings.readonly',
].map((s) => SCOPE_PREFIX + s);
const IDENTITY_SCOPES = ['openid', 'email', 'profile', `${SCOPE_PREFIX}userinfo.email`];

/** Which scopes each group of methods accepts (per method, from the discovery document). */
export const METHOD_SCOPES = {
  eventsRead: [
    'calendar',
    'calendar.app.created',
    'calendar.events',
    'calendar.events.freebusy',
    'calendar.events.owned',
    'calendar.events.owned.readonly',
    'calendar.events.public.readonly',
    'calendar.events.readonly',
    'calendar.readonly',
  ],
  eventsWrite: ['calendar', 'calendar.app.created', 'calendar.events', 'calendar.events.owned'],
  freeBusy: ['calendar', 'calendar.events.freebusy', 'calendar.freebusy', 'calendar.readonly'],
  calendarList: ['calendar', 'calendar.calendarlist', 'calendar.calendarlist.readonly', 'calendar.readonly'],
  calendarsRead: [
    'calendar',
    'calendar.app.created',
    'calendar.calendars',
    'calendar.calendars.readonly',
    'calendar.readonly',
  ],
  channels: CALENDAR_SCOPES.map((s) => s.slice(SCOPE_PREFIX.length)),
} as const;
export type MethodGroup = keyof typeof METHOD_SCOPES;

export type OAuthSettings = {
  clientId: string;
  clientSecret: string;
  /** Registered redirect URIs; null accepts any http(s) URI. */
  redirectUris: string[] | null;
  accessTokenTtlSeconds: number;
  /** Refresh token lifetime (7 days for apps in "Testing"); null for none. */
  refreshTokenTtlSeconds: number | null;
  /** Whether a refresh grant returns a new refresh token and retires the old one. */
  rotateRefreshTokens: boolean;
  /** Live refresh tokens per client; the oldest is revoked beyond it. */
  refreshTokenLimit: number;
  consent: 'approve' | 'deny';
  /** Whether API calls check the token's scopes against the method's. */
  enforceScopes: boolean;
};

type Code = {
  clientId: string;
  redirectUri: string;
  scopes: string[];
  challenge: string;
  offline: boolean;
  forceConsent: boolean;
  expiresAt: number;
};
type Refresh = {
  clientId: string;
  scopes: string[];
  expiresAt: number | null;
  revoked: boolean;
  issued: number;
};
export type Access = {
  clientId: string;
  scopes: string[];
  expiresAt: number;
  refresh: string | null;
  revoked: boolean;
};

export type HttpAnswer = { status: number; headers?: Record<string, string>; body: unknown };

const token = (prefix: string) => `${prefix}${randomBytes(24).toString('base64url')}`;
const oauthError = (status: number, error: string, description: string): HttpAnswer => ({
  status,
  body: { error, error_description: description },
});

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Google's authorization server: consent (automatic), codes with PKCE, refresh, revoke, bearer checks. */
export class OAuthServer {
  readonly #codes = new Map<string, Code>();
  readonly #refresh = new Map<string, Refresh>();
  readonly #access = new Map<string, Access>();
  #issued = 0;

  constructor(
    private readonly now: () => number,
    readonly settings: OAuthSettings,
  ) {}

  reset(): void {
    this.#codes.clear();
    this.#refresh.clear();
    this.#access.clear();
  }

  authorize(query: URLSearchParams): HttpAnswer {
    const clientId = query.get('client_id');
    const redirectUri = query.get('redirect_uri') ?? '';
    if (clientId !== this.settings.clientId) {
      return oauthError(401, 'invalid_client', 'The OAuth client was not found.');
    }
    if (!this.#redirectAllowed(redirectUri)) {
      return oauthError(
        400,
        'redirect_uri_mismatch',
        `redirect_uri ${redirectUri} is not registered for this client`,
      );
    }
    const state = query.get('state');
    const back = (params: Record<string, string>): HttpAnswer => {
      const target = new URL(redirectUri);
      for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v);
      if (state !== null) target.searchParams.set('state', state);
      return { status: 302, headers: { location: target.toString() }, body: null };
    };
    if (query.get('response_type') !== 'code') return back({ error: 'unsupported_response_type' });
    const challenge = query.get('code_challenge');
    if (
      !challenge ||
      query.get('code_challenge_method') !== 'S256' ||
      !/^[A-Za-z0-9_-]{43}$/.test(challenge)
    ) {
      return back({
        error: 'invalid_request',
        error_description: 'code_challenge with method S256 is required',
      });
    }
    const scopes = (query.get('scope') ?? '').split(/\s+/).filter(Boolean);
    if (
      scopes.length === 0 ||
      scopes.some((s) => !CALENDAR_SCOPES.includes(s) && !IDENTITY_SCOPES.includes(s))
    ) {
      return back({ error: 'invalid_scope' });
    }
    if (this.settings.consent === 'deny') return back({ error: 'access_denied' });
    const code = token('4/0');
    this.#codes.set(code, {
      clientId,
      redirectUri,
      scopes,
      challenge,
      offline: query.get('access_type') === 'offline',
      forceConsent: (query.get('prompt') ?? '').split(/\s+/).includes('consent'),
      expiresAt: this.now() + 10 * 60_000,
    });
    return back({ code, scope: scopes.join(' ') });
  }

  token(form: URLSearchParams, authorization: string | undefined): HttpAnswer {
    let clientId = form.get('client_id');
    let secret = form.get('client_secret');
    if (authorization?.startsWith('Basic ')) {
      const pair = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
      const colon = pair.indexOf(':');
      clientId = decodeURIComponent(pair.slice(0, colon));
      secret = decodeURIComponent(pair.slice(colon + 1));
    }
    if (clientId !== this.settings.clientId || secret === null || !same(secret, this.settings.clientSecret)) {
      return oauthError(401, 'invalid_client', 'Unauthorized');
    }
    const grantType = form.get('grant_type');
    if (grantType === 'authorization_code') return this.#exchangeCode(form);
    if (grantType === 'refresh_token') return this.#refreshGrant(form);
    return oauthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType ?? ''}`);
  }

  revoke(form: URLSearchParams): HttpAnswer {
    const value = form.get('token') ?? '';
    const access = this.#access.get(value);
    const refreshId = access ? access.refresh : this.#refresh.has(value) ? value : null;
    if (!access && refreshId === null) return oauthError(400, 'invalid_token', 'Token expired or revoked');
    if (access) access.revoked = true;
    if (refreshId !== null) this.#revokeRefresh(refreshId);
    return { status: 200, body: {} };
  }

  /** The access token of an API call, or a 401 authError / 403 insufficientPermissions to throw. */
  check(authorization: string | undefined, group: MethodGroup): Access {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    const access = match ? this.#access.get(match[1]!) : undefined;
    if (!access || access.revoked || access.expiresAt <= this.now()) throw errors.authError();
    if (this.settings.enforceScopes) {
      const accepted = METHOD_SCOPES[group] as readonly string[];
      if (
        !access.scopes.some(
          (s) => s.startsWith(SCOPE_PREFIX) && accepted.includes(s.slice(SCOPE_PREFIX.length)),
        )
      ) {
        throw errors.insufficientPermissions();
      }
    }
    return access;
  }

  /** Tokens without the consent dance, for tests and tools. */
  mint(input: { scopes?: string[]; accessTtlSeconds?: number; refresh?: boolean } = {}) {
    const scopes = input.scopes ?? [`${SCOPE_PREFIX}calendar.events`];
    const refresh = input.refresh === false ? null : this.#newRefresh(this.settings.clientId, scopes);
    return this.#answer(scopes, refresh, refresh, input.accessTtlSeconds).body as Record<string, unknown>;
  }

  expireAccessTokens(): number {
    let n = 0;
    for (const access of this.#access.values()) {
      if (access.expiresAt > this.now()) n++;
      access.expiresAt = Math.min(access.expiresAt, this.now());
    }
    return n;
  }

  revokeRefreshTokens(): number {
    let n = 0;
    for (const id of this.#refresh.keys()) {
      if (!this.#refresh.get(id)!.revoked) n++;
      this.#revokeRefresh(id);
    }
    return n;
  }

  #redirectAllowed(uri: string): boolean {
    if (this.settings.redirectUris !== null) return this.settings.redirectUris.includes(uri);
    try {
      const url = new URL(uri);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hash === '';
    } catch {
      return false;
    }
  }

  #exchangeCode(form: URLSearchParams): HttpAnswer {
    const codeText = form.get('code') ?? '';
    const code = this.#codes.get(codeText);
    this.#codes.delete(codeText);
    if (!code || code.expiresAt <= this.now()) {
      return oauthError(400, 'invalid_grant', 'Malformed auth code.');
    }
    if (form.get('redirect_uri') !== code.redirectUri) {
      return oauthError(400, 'redirect_uri_mismatch', 'Bad Request');
    }
    const verifier = form.get('code_verifier');
    if (verifier === null) return oauthError(400, 'invalid_request', 'Missing code verifier.');
    const computed = createHash('sha256').update(verifier).digest('base64url');
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || !same(computed, code.challenge)) {
      return oauthError(400, 'invalid_grant', 'Invalid code verifier.');
    }
    // Google hands out a refresh token on first consent only, unless prompt=consent asks again.
    const hasLive = [...this.#refresh.values()].some((r) => r.clientId === code.clientId && !r.revoked);
    const refresh =
      code.offline && (!hasLive || code.forceConsent) ? this.#newRefresh(code.clientId, code.scopes) : null;
    const granted =
      refresh ??
      [...this.#refresh.entries()].find(([, r]) => r.clientId === code.clientId && !r.revoked)?.[0] ??
      null;
    return this.#answer(code.scopes, refresh, granted);
  }

  #refreshGrant(form: URLSearchParams): HttpAnswer {
    const id = form.get('refresh_token') ?? '';
    const refresh = this.#refresh.get(id);
    if (!refresh || refresh.revoked || (refresh.expiresAt !== null && refresh.expiresAt <= this.now())) {
      return oauthError(400, 'invalid_grant', 'Token has been expired or revoked.');
    }
    let current = id;
    let rotated: string | null = null;
    if (this.settings.rotateRefreshTokens) {
      refresh.revoked = true;
      rotated = this.#newRefresh(refresh.clientId, refresh.scopes);
      current = rotated;
    }
    return this.#answer(refresh.scopes, rotated, current);
  }

  #newRefresh(clientId: string, scopes: string[]): string {
    const id = token('1//0');
    const ttl = this.settings.refreshTokenTtlSeconds;
    this.#refresh.set(id, {
      clientId,
      scopes,
      expiresAt: ttl === null ? null : this.now() + ttl * 1000,
      revoked: false,
      issued: ++this.#issued,
    });
    const live = [...this.#refresh.entries()].filter(([, r]) => r.clientId === clientId && !r.revoked);
    live.sort(([, a], [, b]) => a.issued - b.issued);
    while (live.length > this.settings.refreshTokenLimit) this.#revokeRefresh(live.shift()![0]);
    return id;
  }

  #revokeRefresh(id: string): void {
    const refresh = this.#refresh.get(id);
    if (refresh) refresh.revoked = true;
    for (const access of this.#access.values()) if (access.refresh === id) access.revoked = true;
  }

  #answer(
    scopes: string[],
    newRefresh: string | null,
    grant: string | null,
    ttlSeconds?: number,
  ): HttpAnswer {
    const ttl = ttlSeconds ?? this.settings.accessTokenTtlSeconds;
    const accessToken = token('ya29.');
    this.#access.set(accessToken, {
      clientId: this.settings.clientId,
      scopes,
      expiresAt: this.now() + ttl * 1000,
      refresh: grant,
      revoked: false,
    });
    const refresh = newRefresh === null ? undefined : this.#refresh.get(newRefresh);
    return {
      status: 200,
      body: {
        access_token: accessToken,
        expires_in: ttl,
        scope: scopes.join(' '),
        token_type: 'Bearer',
        ...(newRefresh === null ? {} : { refresh_token: newRefresh }),
        ...(refresh?.expiresAt
          ? { refresh_token_expires_in: Math.round((refresh.expiresAt - this.now()) / 1000) }
          : {}),
      },
    };
  }
}

import * as oauth from 'oauth4webapi';
import type { GuardedHttp } from '../http/guarded-http.js';
import { ProviderError } from '../errors.js';

export type OAuthEndpoints = {
  authUrl: string;
  tokenUrl: string;
  revokeUrl: string | undefined;
  clientId: string | undefined;
  clientSecret: string | undefined;
  scopes: readonly string[];
  /** Provider-specific authorization parameters (Google: access_type=offline, prompt=consent). */
  authParams?: Record<string, string>;
};

export type TokenSet = {
  accessToken: string;
  refreshToken: string | null;
  /** Epoch ms; null when the provider did not say. */
  expiresAt: number | null;
};

export type AuthorizationStart = { url: string; state: string; codeVerifier: string };

/**
 * OAuth 2.0 authorization code with PKCE (S256), refresh and revocation, on oauth4webapi. Every
 * request goes through GuardedHttp, so token endpoints get the same time and size limits as any other
 * outbound call. Plain http is accepted only where the outbound guard allows it (an emulator on
 * loopback in tests).
 */
export class OAuthClient {
  readonly #server: oauth.AuthorizationServer;
  readonly #client: oauth.Client;
  readonly #auth: oauth.ClientAuth;
  readonly #options: { [oauth.customFetch]: typeof fetch; [oauth.allowInsecureRequests]: boolean };

  constructor(
    private readonly endpoints: OAuthEndpoints,
    http: GuardedHttp,
  ) {
    this.#server = {
      issuer: new URL(endpoints.tokenUrl).origin,
      authorization_endpoint: endpoints.authUrl,
      token_endpoint: endpoints.tokenUrl,
      ...(endpoints.revokeUrl ? { revocation_endpoint: endpoints.revokeUrl } : {}),
    };
    this.#client = { client_id: endpoints.clientId ?? '' };
    // Without a configured secret only given tokens are used, and nothing is sent to the token endpoint
    // but refreshes, which then fail as the provider says.
    this.#auth = endpoints.clientSecret ? oauth.ClientSecretPost(endpoints.clientSecret) : oauth.None();
    this.#options = {
      [oauth.customFetch]: guardedFetch(http),
      [oauth.allowInsecureRequests]: new URL(endpoints.tokenUrl).protocol === 'http:',
    };
  }

  /** Whether the operator gave this server a client id and secret for the provider. */
  get configured(): boolean {
    return Boolean(this.endpoints.clientId && this.endpoints.clientSecret);
  }

  async start(redirectUri: string): Promise<AuthorizationStart> {
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(this.endpoints.authUrl);
    const params = {
      client_id: this.#client.client_id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: this.endpoints.scopes.join(' '),
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      ...this.endpoints.authParams,
    };
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    return { url: url.toString(), state, codeVerifier };
  }

  /** The callback's query, checked against the state we sent, exchanged for tokens with the verifier. */
  async finish(
    callback: URLSearchParams,
    expectedState: string,
    codeVerifier: string,
    redirectUri: string,
  ): Promise<TokenSet> {
    return this.#tokenCall(async () => {
      const parameters = oauth.validateAuthResponse(this.#server, this.#client, callback, expectedState);
      const response = await oauth.authorizationCodeGrantRequest(
        this.#server,
        this.#client,
        this.#auth,
        parameters,
        redirectUri,
        codeVerifier,
        this.#options,
      );
      return oauth.processAuthorizationCodeResponse(this.#server, this.#client, response);
    });
  }

  async refresh(refreshToken: string): Promise<TokenSet> {
    return this.#tokenCall(async () => {
      const response = await oauth.refreshTokenGrantRequest(
        this.#server,
        this.#client,
        this.#auth,
        refreshToken,
        this.#options,
      );
      return oauth.processRefreshTokenResponse(this.#server, this.#client, response);
    });
  }

  /** Revokes where the provider lets us (Google); a no-op elsewhere. */
  async revoke(token: string): Promise<void> {
    if (!this.endpoints.revokeUrl) return;
    await guarded(async () => {
      const response = await oauth.revocationRequest(
        this.#server,
        this.#client,
        this.#auth,
        token,
        this.#options,
      );
      await oauth.processRevocationResponse(response);
    });
  }

  async #tokenCall(call: () => Promise<oauth.TokenEndpointResponse>): Promise<TokenSet> {
    const now = Date.now();
    const tokens = await guarded(call);
    return {
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token ?? null,
      expiresAt: typeof tokens.expires_in === 'number' ? now + tokens.expires_in * 1000 : null,
    };
  }
}

async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw asProviderError(error);
  }
}

/**
 * invalid_grant (a revoked, expired or reused grant) and refused client credentials mean the user must
 * authorize again; a state or PKCE mismatch is refused the same way. Anything else may pass.
 */
function asProviderError(error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  if (error instanceof oauth.ResponseBodyError || error instanceof oauth.AuthorizationResponseError) {
    const code = error.error;
    const described = error.error_description ? `${code}: ${error.error_description}` : code;
    if (code === 'invalid_grant' || code === 'invalid_client' || code === 'access_denied') {
      return new ProviderError('AUTH_FAILED', described, { status: 400 });
    }
    if (code === 'temporarily_unavailable' || code === 'server_error') {
      return new ProviderError('UNAVAILABLE', described);
    }
    return new ProviderError('REJECTED', described);
  }
  if (error instanceof oauth.OperationProcessingError) {
    return new ProviderError('BAD_RESPONSE', error.message);
  }
  const status = (error as { response?: Response }).response?.status;
  if (status !== undefined && status >= 500)
    return new ProviderError('UNAVAILABLE', `token endpoint answered ${status}`);
  return new ProviderError('BAD_RESPONSE', (error as Error).message);
}

/** A fetch for oauth4webapi that sends through GuardedHttp. */
function guardedFetch(http: GuardedHttp): typeof fetch {
  return async (input: string | URL | Request, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : input.toString();
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, name) => (headers[name] = value));
    // oauth4webapi sends form bodies as URLSearchParams (token, refresh, revoke).
    const raw = init?.body;
    const body = raw instanceof URLSearchParams ? raw.toString() : typeof raw === 'string' ? raw : undefined;
    const response = await http.request({
      method: init?.method ?? 'GET',
      url,
      headers,
      ...(body === undefined ? {} : { body }),
      maxRedirects: 0,
      maxBytes: 1024 * 1024,
    });
    const nullBody = response.status === 204 || response.status === 304;
    return new Response(nullBody ? null : response.body, {
      status: response.status,
      headers: response.headers,
    });
  };
}

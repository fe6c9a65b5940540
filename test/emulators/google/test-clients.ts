import { createHash, randomBytes } from 'node:crypto';
import type { AccessTokenSource } from '../../../src/calendar/port/provider.js';
import { ProviderError } from '../../../src/integrations/errors.js';
import type { GoogleEmulator } from './emulator.js';

/** Small clients for tests that talk to the emulator: OAuth with PKCE, a token source, raw API calls. */

export const EVENTS_SCOPE = 'https://www.googleapis.com/auth/calendar.events';

export function formPost(values: Record<string, string>, basic?: string): RequestInit {
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(basic ? { authorization: `Basic ${Buffer.from(basic).toString('base64')}` } : {}),
    },
    body: new URLSearchParams(values),
  };
}

/** GET on the authorization endpoint, the redirect not followed. */
export async function startAuthorization(
  emulator: GoogleEmulator,
  redirectUri: string,
  overrides: Record<string, string> = {},
) {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(emulator.authUrl);
  url.search = new URLSearchParams({
    client_id: emulator.clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: EVENTS_SCOPE,
    state: 'xyz',
    access_type: 'offline',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...overrides,
  }).toString();
  const response = await fetch(url, { redirect: 'manual' });
  return { response, location: new URL(response.headers.get('location') ?? 'http://invalid/'), verifier };
}

export async function exchangeCode(
  emulator: GoogleEmulator,
  code: string,
  verifier: string,
  redirectUri: string,
) {
  const response = await fetch(
    emulator.tokenUrl,
    formPost({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: redirectUri,
      client_id: emulator.clientId,
      client_secret: emulator.clientSecret,
    }),
  );
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** The whole code flow with PKCE and prompt=consent, as Sched's OAuth client runs it. */
export async function authorizeWithPkce(emulator: GoogleEmulator, redirectUri: string) {
  const { location, verifier } = await startAuthorization(emulator, redirectUri, { prompt: 'consent' });
  const code = location.searchParams.get('code');
  if (!code) throw new Error(`no code in the redirect: ${location.toString()}`);
  const { status, body } = await exchangeCode(emulator, code, verifier, redirectUri);
  if (status !== 200 || typeof body.refresh_token !== 'string') {
    throw new Error(`token exchange: ${status} ${JSON.stringify(body)}`);
  }
  return body as { access_token: string; refresh_token: string };
}

/** The current access token, and a refresh grant when forced; a refused refresh is AUTH_FAILED. */
export class RefreshingTokens implements AccessTokenSource {
  refreshes = 0;

  constructor(
    private readonly emulator: GoogleEmulator,
    private access: string,
    private readonly refresh: string,
  ) {}

  async get(options: { forceRefresh?: boolean } = {}): Promise<string> {
    if (!options.forceRefresh) return this.access;
    this.refreshes++;
    const { clientId, clientSecret, tokenUrl } = this.emulator;
    const response = await fetch(
      tokenUrl,
      formPost({ grant_type: 'refresh_token', refresh_token: this.refresh }, `${clientId}:${clientSecret}`),
    );
    const body = (await response.json()) as { access_token?: string; error?: string };
    if (response.status !== 200 || !body.access_token) {
      throw new ProviderError('AUTH_FAILED', `refresh refused: ${String(body.error)}`, {
        status: response.status,
      });
    }
    this.access = body.access_token;
    return this.access;
  }
}

export type ApiAnswer = { status: number; body: any; headers: Headers };

/** Raw Calendar API calls with a bearer token. */
export function apiClient(emulator: GoogleEmulator, bearer: () => string) {
  return async (
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<ApiAnswer> => {
    const response = await fetch(`${emulator.apiUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${bearer()}`,
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
  };
}

export const errorReason = (answer: ApiAnswer) =>
  answer.body?.error?.errors?.[0]?.reason as string | undefined;

import type { AccessTokenSource } from '../../../src/calendar/port/provider.js';
import { ProviderError } from '../../../src/integrations/errors.js';
import type { GraphEmulator } from './graph-emulator.js';

/**
 * An AccessTokenSource for tests: starts from a minted grant and refreshes through the emulator's
 * token endpoint like an OAuth client would, keeping the rotated refresh token.
 */
export class EmulatorTokenSource implements AccessTokenSource {
  accessToken: string;
  refreshToken: string | null;
  /** How many times a refresh was forced (after a 401). */
  forcedRefreshes = 0;

  constructor(
    private readonly emulator: GraphEmulator,
    grant = emulator.control.mintToken(),
  ) {
    this.accessToken = grant.accessToken;
    this.refreshToken = grant.refreshToken;
  }

  async get(options: { forceRefresh?: boolean } = {}): Promise<string> {
    if (options.forceRefresh) {
      this.forcedRefreshes++;
      await this.refresh();
    }
    return this.accessToken;
  }

  async refresh(): Promise<void> {
    if (!this.refreshToken) throw new ProviderError('AUTH_FAILED', 'no refresh token');
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: this.refreshToken,
      client_id: this.emulator.clientId,
      client_secret: this.emulator.clientSecret ?? '',
      scope: 'offline_access Calendars.ReadWrite',
    });
    const response = await fetch(this.emulator.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    const body = (await response.json()) as Record<string, unknown>;
    if (response.status !== 200) {
      throw new ProviderError(
        'AUTH_FAILED',
        `refresh refused: ${String(body.error)} ${String(body.error_description)}`,
      );
    }
    this.accessToken = String(body.access_token);
    if (typeof body.refresh_token === 'string') this.refreshToken = body.refresh_token;
  }
}

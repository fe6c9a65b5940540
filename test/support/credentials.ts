import type { OAuthCredentials } from '../../src/calendar/store/tokens.js';
import type { TestApp } from './test-app.js';

/** What a connection holds in credentials_sealed, opened with the app's key. */
export async function storedCredentials(t: TestApp, connectionId: string): Promise<OAuthCredentials> {
  const row = await t.database.db
    .selectFrom('calendar_connections')
    .select('credentials_sealed')
    .where('connection_id', '=', connectionId)
    .executeTakeFirstOrThrow();
  if (!row.credentials_sealed) throw new Error(`connection ${connectionId} holds no credentials`);
  return t.secretBox.openJson<OAuthCredentials>(row.credentials_sealed);
}

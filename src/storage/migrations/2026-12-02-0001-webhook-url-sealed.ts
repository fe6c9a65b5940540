import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * A receiver's URL may carry a token in its query, so it is sealed like the other secrets: `url_sealed`
 * holds the URL as given, and `url` only its masked form (query values as `***`). SQL has no key, so
 * rows from before are sealed by the server at its start (sealPlaintextWebhookUrls); until then the
 * dispatcher uses their `url`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table webhook_endpoints add column url_sealed text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table webhook_endpoints drop column if exists url_sealed`.execute(db);
}

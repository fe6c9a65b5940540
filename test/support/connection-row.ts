import type { TestApp } from './test-app.js';

/** A calendar connection's row as stored, read past the API (failure count, next sync time, cursor). */
export async function connectionRow(t: TestApp, connectionId: string) {
  return t.database.db
    .selectFrom('calendar_connections')
    .selectAll()
    .where('connection_id', '=', connectionId)
    .executeTakeFirstOrThrow();
}

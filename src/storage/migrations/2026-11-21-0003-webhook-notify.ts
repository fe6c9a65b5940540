import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * A new delivery wakes the dispatchers at once instead of at their next poll. Row-level, so a
 * statement that inserts nothing notifies no one; PostgreSQL folds a transaction's identical
 * notifications into one.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function sched_notify_webhook_delivery() returns trigger language plpgsql as $$
    begin
      perform pg_notify('sched_webhook_deliveries', '');
      return null;
    end
    $$`.execute(db);
  await sql`
    create trigger webhook_deliveries_notify after insert on webhook_deliveries
    for each row execute function sched_notify_webhook_delivery()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists webhook_deliveries_notify on webhook_deliveries`.execute(db);
  await sql`drop function if exists sched_notify_webhook_delivery()`.execute(db);
}

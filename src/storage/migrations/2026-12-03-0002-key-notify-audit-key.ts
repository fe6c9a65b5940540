import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * 1. Every process keeps the keys it verified in memory; a change to a key (revocation, scopes, a delete,
 * also the cascade of an organization's delete) NOTIFYs `sched_api_keys` with the key's id at commit,
 * so every process drops it at once. A trigger rather than the service code, so that every writer is
 * covered: the API, the CLI, a cascade and an operator's own SQL. TRUNCATE fires no row trigger: it
 * sends an empty payload, which drops every key.
 *
 * 2. The audit log had two indexes, its random `audit_id` key and `(organization_id, at desc, audit_id
 * desc)`, which every read of it uses. One primary key on `(organization_id, at, audit_id)` serves
 * those reads (scanned backwards), is as unique, and spares every change an index entry: for a
 * booking about 7 % less WAL. New entries land at the end of their organization's range rather than on
 * a random page of the old key.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function sched_notify_api_key_change() returns trigger language plpgsql as $$
    begin
      if tg_level = 'ROW' then
        perform pg_notify('sched_api_keys', old.api_key_id::text);
      else
        perform pg_notify('sched_api_keys', '');
      end if;
      return null;
    end
    $$`.execute(db);
  await sql`
    create trigger api_keys_notify after update or delete on api_keys
    for each row execute function sched_notify_api_key_change()`.execute(db);
  await sql`
    create trigger api_keys_notify_truncate after truncate on api_keys
    for each statement execute function sched_notify_api_key_change()`.execute(db);

  await sql`alter table audit_log drop constraint audit_log_pkey`.execute(db);
  await sql`drop index audit_log_org_idx`.execute(db);
  await sql`alter table audit_log add constraint audit_log_pkey primary key (organization_id, at, audit_id)`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table audit_log drop constraint audit_log_pkey`.execute(db);
  await sql`alter table audit_log add constraint audit_log_pkey primary key (audit_id)`.execute(db);
  await sql`create index audit_log_org_idx on audit_log (organization_id, at desc, audit_id desc)`.execute(
    db,
  );
  await sql`drop trigger if exists api_keys_notify_truncate on api_keys`.execute(db);
  await sql`drop trigger if exists api_keys_notify on api_keys`.execute(db);
  await sql`drop function if exists sched_notify_api_key_change()`.execute(db);
}

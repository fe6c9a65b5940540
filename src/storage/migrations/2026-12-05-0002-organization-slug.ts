import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Organizations get what public pages need: a `slug` for their URLs (unique, lowercase letters, digits
 * and `-`), a default time zone and branding (logo URL, accent colour). Existing organizations take a
 * slug made from their name; two names that make the same slug are told apart by a number.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table organizations
    add column slug text,
    add column time_zone text not null default 'UTC',
    add column branding jsonb not null default '{}'::jsonb`.execute(db);
  const rows = await sql<{ organization_id: string; name: string }>`
    select organization_id, name from organizations order by created_at, organization_id`.execute(db);
  const taken = new Set<string>();
  for (const row of rows.rows) {
    const base = slugFromName(row.name);
    let slug = base;
    for (let n = 2; taken.has(slug) || RESERVED.has(slug); n++) slug = `${base.slice(0, 56)}-${n}`;
    taken.add(slug);
    await sql`update organizations set slug = ${slug} where organization_id = ${row.organization_id}`.execute(
      db,
    );
  }
  await sql`alter table organizations alter column slug set not null`.execute(db);
  await sql`alter table organizations add constraint organizations_slug_key unique (slug)`.execute(db);
  await sql`alter table organizations add constraint organizations_slug_check
    check (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table organizations drop column slug, drop column time_zone, drop column branding`.execute(
    db,
  );
}

/** Kept in step with services/organizations.ts, which migrations may not import. */
const RESERVED = new Set(['manage', 'admin', 'api', 'public', 'book', 'embed', 'static', 'assets']);

function slugFromName(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/g, '');
  return slug === '' ? 'org' : slug;
}

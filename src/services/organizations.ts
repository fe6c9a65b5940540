import type { Db, OrganizationBranding, OrganizationRow } from '../storage/database.js';
import { recordAudit } from './audit.js';
import type { Actor } from './context.js';
import { ErrorCode, SchedError } from './errors.js';

export const SLUG_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
const SLUG = new RegExp(SLUG_PATTERN);

/**
 * Words public URLs use for themselves (`/public/manage/{token}`, `/book/...`, `/admin`): no organization
 * may take them as its slug. The organization-slug migration keeps its own copy of this list.
 */
export const RESERVED_SLUGS: ReadonlySet<string> = new Set([
  'manage',
  'admin',
  'api',
  'public',
  'book',
  'embed',
  'static',
  'assets',
]);

/** `Acme Clinic, Ltd.` → `acme-clinic-ltd`; a name with no letters or digits becomes `org`. */
export function slugFromName(name: string): string {
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

export function isValidSlug(slug: string): boolean {
  return SLUG.test(slug);
}

export type OrganizationView = {
  organization_id: string;
  name: string;
  slug: string;
  time_zone: string;
  branding: { logo_url: string | null; accent_color: string | null };
  created_at: string;
};

export function organizationView(row: OrganizationRow): OrganizationView {
  return {
    organization_id: row.organization_id,
    name: row.name,
    slug: row.slug,
    time_zone: row.time_zone,
    branding: { logo_url: row.branding.logo_url ?? null, accent_color: row.branding.accent_color ?? null },
    created_at: row.created_at.toISOString(),
  };
}

/**
 * The organization of this name, made if new, with the slug its name makes (`acme` for `acme`); when
 * another organization has that slug, the first free `<slug>-2`, `<slug>-3`, ... Conflicts are skipped
 * with ON CONFLICT so the caller's transaction survives them.
 */
export async function ensureOrganization(db: Db, name: string): Promise<string> {
  const base = slugFromName(name);
  for (let n = 1; ; n++) {
    const slug = n === 1 ? base : `${base.slice(0, 56)}-${n}`;
    const existing = await db
      .selectFrom('organizations')
      .select('organization_id')
      .where('name', '=', name)
      .executeTakeFirst();
    if (existing) return existing.organization_id;
    if (RESERVED_SLUGS.has(slug)) continue;
    const inserted = await db
      .insertInto('organizations')
      .values({ name, slug })
      .onConflict((oc) => oc.doNothing())
      .returning('organization_id')
      .executeTakeFirst();
    if (inserted) return inserted.organization_id;
  }
}

export async function getOrganization(db: Db, actor: Actor): Promise<OrganizationView> {
  const row = await db
    .selectFrom('organizations')
    .selectAll()
    .where('organization_id', '=', actor.organizationId)
    .executeTakeFirstOrThrow();
  return organizationView(row);
}

export type OrganizationPatch = {
  name?: string | undefined;
  slug?: string | undefined;
  time_zone?: string | undefined;
  branding?: { logo_url?: string | null | undefined; accent_color?: string | null | undefined } | undefined;
};

export async function updateOrganization(
  db: Db,
  actor: Actor,
  patch: OrganizationPatch,
): Promise<OrganizationView> {
  if (patch.slug !== undefined && RESERVED_SLUGS.has(patch.slug)) {
    throw new SchedError(ErrorCode.VALIDATION_FAILED, `slug: "${patch.slug}" is reserved`, {
      errors: [{ field: 'slug', message: `"${patch.slug}" is reserved; choose another` }],
    });
  }
  return db.transaction().execute(async (trx) => {
    const before = await trx
      .selectFrom('organizations')
      .selectAll()
      .where('organization_id', '=', actor.organizationId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    const taken = async (column: 'name' | 'slug', value: string | undefined) =>
      value !== undefined &&
      (await trx
        .selectFrom('organizations')
        .select('organization_id')
        .where(column, '=', value)
        .where('organization_id', '<>', actor.organizationId)
        .executeTakeFirst()) !== undefined;
    if (await taken('slug', patch.slug)) {
      throw new SchedError(ErrorCode.SLUG_TAKEN, `another organization has the slug "${patch.slug}"`);
    }
    if (await taken('name', patch.name)) {
      throw new SchedError(ErrorCode.NAME_TAKEN, `another organization is named "${patch.name}"`);
    }
    const branding: OrganizationBranding = { ...before.branding };
    if (patch.branding?.logo_url !== undefined) branding.logo_url = patch.branding.logo_url;
    if (patch.branding?.accent_color !== undefined) branding.accent_color = patch.branding.accent_color;
    const row = await trx
      .updateTable('organizations')
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.slug !== undefined ? { slug: patch.slug } : {}),
        ...(patch.time_zone !== undefined ? { time_zone: patch.time_zone } : {}),
        branding: JSON.stringify(branding),
      })
      .where('organization_id', '=', actor.organizationId)
      .returningAll()
      .executeTakeFirstOrThrow();
    const view = organizationView(row);
    await recordAudit(trx, actor, {
      action: 'organization.updated',
      targetType: 'organization',
      targetId: actor.organizationId,
      details: { before: organizationView(before), after: view },
    });
    return view;
  });
}

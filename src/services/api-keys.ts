import { createHash, randomBytes } from 'node:crypto';
import { ConfigError } from '../config.js';
import type { ApiKeyRow, Db } from '../storage/database.js';
import { forgetApiKey } from './api-key-cache.js';
import { recordAudit } from './audit.js';
import type { Actor, Scope, ServiceDeps } from './context.js';
import { ErrorCode, SchedError } from './errors.js';
import { ensureOrganization } from './organizations.js';
import { afterKey, finishPage, pageOf, timeKey } from './pagination.js';

const KEY_PREFIX = 'sk_';

/** admin implies write implies read. */
export function hasScope(granted: readonly Scope[], needed: Scope): boolean {
  if (granted.includes('admin')) return true;
  if (needed === 'read') return granted.includes('read') || granted.includes('write');
  return granted.includes(needed);
}

/**
 * Keys are 32 random bytes, so a single fast hash is enough to make a stolen table useless;
 * slow password hashes exist for guessable secrets, which these are not.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

export type ApiKeyView = {
  api_key_id: string;
  name: string;
  scopes: Scope[];
  key_prefix: string;
  created_at: string;
  revoked_at: string | null;
};

function toView(row: ApiKeyRow): ApiKeyView {
  return {
    api_key_id: row.api_key_id,
    name: row.name,
    scopes: row.scopes as Scope[],
    key_prefix: row.key_prefix,
    created_at: row.created_at.toISOString(),
    revoked_at: row.revoked_at ? row.revoked_at.toISOString() : null,
  };
}

export type Authenticated = { organizationId: string; apiKeyId: string; scopes: Scope[] };

/** The live (unrevoked) key with this hash; the HTTP layer hashes once and caches by the hash. */
export async function authenticateKeyHash(db: Db, keyHash: string): Promise<Authenticated | undefined> {
  const row = await db
    .selectFrom('api_keys')
    .select(['api_key_id', 'organization_id', 'scopes'])
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row
    ? { organizationId: row.organization_id, apiKeyId: row.api_key_id, scopes: row.scopes as Scope[] }
    : undefined;
}

async function insertKey(db: Db, organizationId: string, name: string, scopes: Scope[], key: string) {
  return db
    .insertInto('api_keys')
    .values({
      organization_id: organizationId,
      name,
      scopes,
      key_hash: hashApiKey(key),
      key_prefix: key.slice(0, KEY_PREFIX.length + 6),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function createApiKey(
  db: Db,
  actor: Actor,
  input: { name: string; scopes: Scope[] },
): Promise<ApiKeyView & { key: string }> {
  const key = generateApiKey();
  const scopes = [...new Set(input.scopes)];
  return db.transaction().execute(async (trx) => {
    const row = await insertKey(trx, actor.organizationId, input.name, scopes, key);
    await recordAudit(trx, actor, {
      action: 'api_key.created',
      targetType: 'api_key',
      targetId: row.api_key_id,
      details: { name: row.name, scopes },
    });
    return { ...toView(row), key };
  });
}

export async function listApiKeys(
  db: Db,
  actor: Actor,
  query: { limit?: number; cursor?: string },
): Promise<{ api_keys: ApiKeyView[]; next_cursor: string | null }> {
  const page = pageOf(query);
  let select = db
    .selectFrom('api_keys')
    .selectAll()
    .select(timeKey('created_at').as('cursor_time'))
    .where('organization_id', '=', actor.organizationId);
  if (page.after) select = select.where(afterKey('created_at', 'api_key_id', page.after));
  const rows = await select
    .orderBy('created_at')
    .orderBy('api_key_id')
    .limit(page.limit + 1)
    .execute();
  const { items, nextCursor } = finishPage(rows, page.limit, (row) => row.api_key_id);
  return { api_keys: items.map(toView), next_cursor: nextCursor };
}

export async function revokeApiKey(
  { db, clock }: ServiceDeps,
  actor: Actor,
  apiKeyId: string,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('api_keys')
      .set({ revoked_at: new Date(clock()) })
      .where('api_key_id', '=', apiKeyId)
      .where('organization_id', '=', actor.organizationId)
      .where('revoked_at', 'is', null)
      .returning('api_key_id')
      .executeTakeFirst();
    if (!row) {
      const exists = await trx
        .selectFrom('api_keys')
        .select('api_key_id')
        .where('api_key_id', '=', apiKeyId)
        .where('organization_id', '=', actor.organizationId)
        .executeTakeFirst();
      // Revoking twice is not an error: the caller's intent holds.
      if (exists) return;
      throw new SchedError(ErrorCode.API_KEY_NOT_FOUND, `no API key ${apiKeyId}`);
    }
    await recordAudit(trx, actor, { action: 'api_key.revoked', targetType: 'api_key', targetId: apiKeyId });
  });
  forgetApiKey(db, apiKeyId);
}

type BootstrapInput = { organization: string; scopes: Scope[]; name?: string; key?: string };
type BootstrapResult = { key: string; apiKeyId: string; organizationId: string };

/**
 * `sched api-keys create` and SCHED_BOOTSTRAP_API_KEY: makes the organization if it is new and returns a
 * key for it. Several replicas may ensure the same key at once; the loser of that race finds the
 * winner's row on its second try.
 */
export async function createBootstrapKey(db: Db, input: BootstrapInput): Promise<BootstrapResult> {
  try {
    return await createBootstrapKeyOnce(db, input);
  } catch (error) {
    if ((error as { code?: unknown }).code !== '23505' || input.key === undefined) throw error;
    return createBootstrapKeyOnce(db, input);
  }
}

async function createBootstrapKeyOnce(db: Db, input: BootstrapInput): Promise<BootstrapResult> {
  return db.transaction().execute(async (trx) => {
    const organizationId = await ensureOrganization(trx, input.organization);
    const key = input.key ?? generateApiKey();
    const existing = await trx
      .selectFrom('api_keys')
      .select(['api_key_id', 'organization_id'])
      .where('key_hash', '=', hashApiKey(key))
      .executeTakeFirst();
    if (existing) {
      if (existing.organization_id !== organizationId) {
        throw new ConfigError('SCHED_BOOTSTRAP_API_KEY', 'is already the key of another organization');
      }
      return { key, apiKeyId: existing.api_key_id, organizationId };
    }
    const row = await insertKey(
      trx,
      organizationId,
      input.name ?? 'bootstrap',
      [...new Set(input.scopes)],
      key,
    );
    await recordAudit(
      trx,
      { organizationId, label: 'cli' },
      {
        action: 'api_key.created',
        targetType: 'api_key',
        targetId: row.api_key_id,
        details: { name: row.name, scopes: row.scopes },
      },
    );
    return { key, apiKeyId: row.api_key_id, organizationId };
  });
}

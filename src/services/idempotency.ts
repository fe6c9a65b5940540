import { sql } from 'kysely';
import { openStoredValue, type SecretBox } from '../security/secret-box.js';
import type { Db } from '../storage/database.js';
import { ErrorCode, SchedError } from './errors.js';

/** Replays are kept this long, as the contract promises. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/**
 * A claim this old with no response belongs to a process that died mid-request; the client may retry
 * rather than be told "in progress" for a day.
 */
export const ABANDONED_AFTER_MS = 5 * 60 * 1000;

export type IdempotencyClaim = { kind: 'claimed' } | { kind: 'replay'; status: number; body: string };

/*
 * Stored responses carry what a route hands out once (API keys, webhook secrets, feed URLs), so every
 * one is sealed, whatever the route. The sealed form starts with `v<key version>.`, which no JSON text
 * does: a row written before sealing (a JSON body) is told apart and still replayed as it is.
 * `sched keys rotate` re-seals these bodies too (and seals such old rows), like every sealed column.
 */

function deleteKey(db: Db, organizationId: string, key: string) {
  return db
    .deleteFrom('idempotency_keys')
    .where('organization_id', '=', organizationId)
    .where('idempotency_key', '=', key);
}

export async function claimIdempotencyKey(
  db: Db,
  box: SecretBox,
  organizationId: string,
  key: string,
  requestHash: string,
  now: number,
): Promise<IdempotencyClaim> {
  // An abandoned claim of this key is cleared first, so the insert below can win it back. Expired rows
  // go too, of every key: none is kept past its day (a row from before sealing holds a plaintext body).
  await db
    .deleteFrom('idempotency_keys')
    .where((eb) =>
      eb.or([
        eb('expires_at', '<', new Date(now)),
        eb.and([
          eb('organization_id', '=', organizationId),
          eb('idempotency_key', '=', key),
          eb('state', '=', 'in_progress'),
          eb('created_at', '<', new Date(now - ABANDONED_AFTER_MS)),
        ]),
      ]),
    )
    .execute();
  const inserted = await db
    .insertInto('idempotency_keys')
    .values({
      organization_id: organizationId,
      idempotency_key: key,
      request_hash: requestHash,
      state: 'in_progress',
      created_at: new Date(now),
      expires_at: new Date(now + IDEMPOTENCY_TTL_MS),
    })
    .onConflict((oc) => oc.columns(['organization_id', 'idempotency_key']).doNothing())
    .returning(sql<number>`1`.as('claimed'))
    .executeTakeFirst();
  if (inserted) return { kind: 'claimed' };
  const existing = await db
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'state', 'response_status', 'response_body'])
    .where('organization_id', '=', organizationId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
  if (!existing) return claimIdempotencyKey(db, box, organizationId, key, requestHash, now);
  if (existing.request_hash !== requestHash) {
    throw new SchedError(
      ErrorCode.IDEMPOTENCY_KEY_REUSED,
      'this Idempotency-Key was used with a different request; use a new key for a new request',
      { errors: [{ field: 'Idempotency-Key', message: 'was already used for a different request' }] },
    );
  }
  if (
    existing.state === 'in_progress' ||
    existing.response_status === null ||
    existing.response_body === null
  ) {
    throw new SchedError(
      ErrorCode.IDEMPOTENCY_IN_PROGRESS,
      'the first request with this Idempotency-Key is still running; retry in a moment',
    );
  }
  const body = openStoredValue(box, existing.response_body);
  if (body === undefined) {
    // Sealed under another key (the key was replaced): the response cannot be given back, so the key
    // counts as unused rather than blocking the client for a day.
    await deleteKey(db, organizationId, key).where('state', '=', 'done').execute();
    return claimIdempotencyKey(db, box, organizationId, key, requestHash, now);
  }
  return { kind: 'replay', status: existing.response_status, body };
}

export async function completeIdempotencyKey(
  db: Db,
  box: SecretBox,
  organizationId: string,
  key: string,
  status: number,
  body: string,
): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ state: 'done', response_status: status, response_body: box.seal(body) })
    .where('organization_id', '=', organizationId)
    .where('idempotency_key', '=', key)
    .execute();
}

/** A server error is not a result worth replaying: the client should be able to try again. */
export async function releaseIdempotencyKey(db: Db, organizationId: string, key: string): Promise<void> {
  await deleteKey(db, organizationId, key).where('state', '=', 'in_progress').execute();
}

import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createDependencies } from '../../src/dependencies.js';
import { hashRequest } from '../../src/http/idempotency.js';
import { SecretBox } from '../../src/security/secret-box.js';
import { IDEMPOTENCY_TTL_MS } from '../../src/services/idempotency.js';
import { describeOnBackends } from '../support/backends.js';

const NEW_KEY = { name: 'ci', scopes: ['read'] };

describeOnBackends('idempotency records at rest', (t) => {
  const storedRow = (key: string) =>
    t()
      .database.db.selectFrom('idempotency_keys')
      .selectAll()
      .where('organization_id', '=', t().organizationId)
      .where('idempotency_key', '=', key)
      .executeTakeFirst();

  /** A row as an earlier process left it: a done response for NEW_KEY, due to expire in a day. */
  const insertDoneRow = (key: string, body: string, ageMs = 0) =>
    t()
      .database.db.insertInto('idempotency_keys')
      .values({
        organization_id: t().organizationId,
        idempotency_key: key,
        request_hash: hashRequest('POST', '/api-keys', NEW_KEY),
        state: 'done',
        response_status: 201,
        response_body: body,
        created_at: new Date(t().clock.now - ageMs),
        expires_at: new Date(t().clock.now - ageMs + IDEMPOTENCY_TTL_MS),
      })
      .execute();

  const createKey = (idempotencyKey: string) =>
    t().request('POST', '/api-keys', { body: NEW_KEY, headers: { 'idempotency-key': idempotencyKey } });

  it('replays from another process on the same database and key (or after a restart)', async () => {
    const first = await createKey('seal-restart');
    expect(first.statusCode).toBe(201);
    // A second app built as sched serve builds it, on the same database and encryption key.
    const other = await createDependencies(loadConfig({ LOG_LEVEL: 'silent' }), {
      database: t().database,
      clock: () => t().clock.now,
      secretBox: t().secretBox,
      processMetrics: false,
    });
    const app = await other.buildApp();
    try {
      const replay = await app.inject({
        method: 'POST',
        url: '/api-keys',
        headers: { authorization: `Bearer ${t().adminKey}`, 'idempotency-key': 'seal-restart' },
        payload: NEW_KEY,
      });
      expect(replay.statusCode).toBe(201);
      expect(replay.json()).toEqual(first.json());
    } finally {
      await app.close();
      await other.close();
    }
  });

  it('seals every stored response and still replays the same status and body', async () => {
    const first = await createKey('seal-1');
    expect(first.statusCode).toBe(201);
    const { key } = first.json();
    const row = await storedRow('seal-1');
    expect(row?.state).toBe('done');
    expect(row?.response_body).not.toContain(key);
    expect(row?.response_body).not.toContain('api_key_id');
    expect(() => JSON.parse(row?.response_body ?? '')).toThrow();

    const replay = await createKey('seal-1');
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toBe(first.body);
  });

  it('seals error responses too', async () => {
    const rotateUnknown = () =>
      t().request('POST', '/webhooks/00000000-0000-4000-8000-000000000000/rotate-secret', {
        headers: { 'idempotency-key': 'seal-error' },
      });
    const missing = await rotateUnknown();
    expect(missing.statusCode).toBe(404);
    const row = await storedRow('seal-error');
    expect(row?.response_status).toBe(404);
    expect(row?.response_body).not.toContain('NOT_FOUND');
    const replay = await rotateUnknown();
    expect(replay.statusCode).toBe(404);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toBe(missing.body);
  });

  it('still replays a row stored in plaintext before sealing', async () => {
    const legacyBody = JSON.stringify({ api_key_id: 'legacy', key: 'sk_legacy', scopes: ['read'] });
    await insertDoneRow('legacy-1', legacyBody);
    const replay = await createKey('legacy-1');
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toBe(legacyBody);
  });

  it('treats a response sealed under another key as absent and runs the request again', async () => {
    const foreign = new SecretBox(randomBytes(32));
    await insertDoneRow('foreign-1', foreign.seal(JSON.stringify({ key: 'sk_unreadable' })));
    const again = await createKey('foreign-1');
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(again.json().key).toMatch(/^sk_/);
    expect((await createKey('foreign-1')).body).toBe(again.body);
  });

  it('drops expired rows of every key, so no plaintext row from before outlives its day', async () => {
    await insertDoneRow('legacy-expired', '{"key":"sk_old"}', IDEMPOTENCY_TTL_MS + 1000);
    expect(await storedRow('legacy-expired')).toBeDefined();
    expect((await createKey('unrelated-1')).statusCode).toBe(201);
    expect(await storedRow('legacy-expired')).toBeUndefined();
  });
});

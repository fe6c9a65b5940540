import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { toArray } from './auth.js';
import type { Clock } from '../services/context.js';
import { validationError } from '../services/errors.js';
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  releaseIdempotencyKey,
} from '../services/idempotency.js';
import type { SecretBox } from '../security/secret-box.js';
import type { Db } from '../storage/database.js';

declare module 'fastify' {
  interface FastifyRequest {
    idempotencyKey: string | undefined;
  }
}

/** Key order must not make two equal bodies differ. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What "the same request" means for a replay: method, URL and body, whatever the key order. */
export function hashRequest(method: string, url: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${url}\n${canonicalJson(body ?? null)}`)
    .digest('hex');
}

/**
 * Stored responses are sealed with `secretBox`. Give the app's own box, so that replays survive a restart
 * and reach every process on a shared database; left out, a key of this process alone is used, and a
 * response stored by another process counts as absent.
 */
export function registerIdempotency(app: FastifyInstance, db: Db, clock: Clock, secretBox: SecretBox): void {
  app.decorateRequest('idempotencyKey', undefined);

  const claim = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.actor) return;
    const header = request.headers['idempotency-key'];
    if (header === undefined) return;
    let key = Array.isArray(header) ? header[0] : header;
    if (!key || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
      throw validationError('Idempotency-Key', 'must be 1 to 255 printable characters without spaces');
    }
    // Public routes act for the organization their URL names: their keys get a namespace of their own.
    if (!request.routeOptions.config.scope) key = `public:${key}`;
    const requestHash = hashRequest(request.method, request.url, request.body);
    const outcome = await claimIdempotencyKey(
      db,
      secretBox,
      request.actor.organizationId,
      key,
      requestHash,
      clock(),
    );
    if (outcome.kind === 'replay') {
      return reply
        .code(outcome.status)
        .header('idempotent-replayed', 'true')
        .type(outcome.status >= 400 ? 'application/problem+json' : 'application/json; charset=utf-8')
        .send(outcome.body);
    }
    request.idempotencyKey = key;
  };

  const complete = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const key = request.idempotencyKey;
    if (!key || !request.actor) return payload;
    request.idempotencyKey = undefined;
    if (reply.statusCode >= 500 || typeof payload !== 'string') {
      await releaseIdempotencyKey(db, request.actor.organizationId, key);
    } else {
      await completeIdempotencyKey(
        db,
        secretBox,
        request.actor.organizationId,
        key,
        reply.statusCode,
        payload,
      );
    }
    return payload;
  };

  // Only authenticated POST routes and public ones that ask take part; every other route runs without these hooks.
  app.addHook('onRoute', (route) => {
    const methods = toArray(route.method);
    if (!methods.includes('POST') || !(route.config?.scope || route.config?.publicIdempotency)) return;
    route.preHandler = [...toArray(route.preHandler), claim];
    route.onSend = [...toArray(route.onSend), complete];
  });
}

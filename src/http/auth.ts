import type { FastifyInstance, FastifyRequest } from 'fastify';
import { startApiKeyCache } from '../services/api-key-cache.js';
import { authenticateKeyHash, hashApiKey, hasScope } from '../services/api-keys.js';
import type { Actor, Scope } from '../services/context.js';
import { ErrorCode, SchedError } from '../services/errors.js';
import type { Db } from '../storage/database.js';
import type { DatabaseHandle, DatabaseKind } from '../storage/open-database.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a route needs; routes without one are public. */
    scope?: Scope;
  }
  interface FastifyRequest {
    actor: Actor | undefined;
  }
}

export function actorOf(request: FastifyRequest): Actor {
  if (!request.actor) throw new SchedError(ErrorCode.UNAUTHENTICATED, 'this route needs an API key');
  return request.actor;
}

function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/**
 * Authenticates before the body is even validated, so an anonymous caller learns nothing from 400s.
 * The hook is attached only to routes that need a scope, so public routes (health, metrics) pay nothing.
 *
 * With `listen`, keys this process verified are kept in memory (api-key-cache.ts) and dropped when the
 * database notifies a change; without it every request reads the key. The listener is set up here,
 * before the app serves (the embedded database needs that), and stopped when the app closes.
 */
export async function registerAuth(
  app: FastifyInstance,
  deps: { db: Db; databaseKind: DatabaseKind; listen?: DatabaseHandle['listen'] | undefined },
): Promise<void> {
  const { db } = deps;
  const keys = deps.listen
    ? await startApiKeyCache({ db, databaseKind: deps.databaseKind, listen: deps.listen })
    : undefined;
  if (keys) app.addHook('onClose', () => keys.stop());
  const cache = keys?.cache;
  app.decorateRequest('actor', undefined);
  const authenticate = async (request: FastifyRequest) => {
    const needed = request.routeOptions.config.scope;
    if (!needed) return;
    const token = bearerToken(request.headers.authorization);
    if (!token) {
      throw new SchedError(ErrorCode.UNAUTHENTICATED, 'send an API key as "Authorization: Bearer <key>"');
    }
    const keyHash = hashApiKey(token);
    let found = cache?.get(keyHash);
    if (!found) {
      const ticket = cache?.ticket();
      found = await authenticateKeyHash(db, keyHash);
      if (found) cache?.fill(keyHash, found, ticket);
    }
    if (!found)
      throw new SchedError(ErrorCode.UNAUTHENTICATED, 'the API key is not valid or has been revoked');
    if (!hasScope(found.scopes, needed)) {
      throw new SchedError(ErrorCode.FORBIDDEN, `this route needs the "${needed}" scope`);
    }
    request.actor = {
      organizationId: found.organizationId,
      label: `api_key:${found.apiKeyId}`,
      scopes: found.scopes,
    };
  };
  app.addHook('onRoute', (route) => {
    if (!route.config?.scope) return;
    route.onRequest = [authenticate, ...toArray(route.onRequest)];
  });
}

export function toArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

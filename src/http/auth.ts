import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticateApiKey, hasScope } from '../services/api-keys.js';
import type { Actor, Scope } from '../services/context.js';
import { ErrorCode, SchedError } from '../services/errors.js';
import type { Db } from '../storage/database.js';

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
 */
export function registerAuth(app: FastifyInstance, db: Db): void {
  app.decorateRequest('actor', undefined);
  const authenticate = async (request: FastifyRequest) => {
    const needed = request.routeOptions.config.scope;
    if (!needed) return;
    const token = bearerToken(request.headers.authorization);
    if (!token) {
      throw new SchedError(ErrorCode.UNAUTHENTICATED, 'send an API key as "Authorization: Bearer <key>"');
    }
    const found = await authenticateApiKey(db, token);
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

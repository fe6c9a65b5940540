import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { createApiKey, listApiKeys, revokeApiKey } from '../../services/api-keys.js';
import { actorOf } from '../auth.js';
import type { RouteDeps } from '../build-app.js';
import { commonErrors, PageQuery, ProblemRef, Strict, Uuid } from '../schemas.js';

const ScopeSchema = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('admin')]);
const ApiKey = Type.Object({
  api_key_id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(ScopeSchema),
  key_prefix: Type.String(),
  created_at: Type.String(),
  revoked_at: Type.Union([Type.String(), Type.Null()]),
});

export function apiKeyRoutes(deps: RouteDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/api-keys',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['api keys'],
          summary: 'Create an API key; the key is shown only in this response',
          body: Strict({
            name: Type.String({ minLength: 1, maxLength: 200 }),
            scopes: Type.Array(ScopeSchema, { minItems: 1, maxItems: 3 }),
          }),
          response: {
            201: Type.Object({ ...ApiKey.properties, key: Type.String() }),
            ...commonErrors,
            409: ProblemRef,
            422: ProblemRef,
          },
        },
      },
      async (request, reply) =>
        reply.code(201).send(await createApiKey(deps.db, actorOf(request), request.body)),
    );

    app.get(
      '/api-keys',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['api keys'],
          summary: 'List API keys (never the keys themselves)',
          querystring: Strict(PageQuery),
          response: {
            200: Type.Object({
              api_keys: Type.Array(ApiKey),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...commonErrors,
          },
        },
      },
      async (request) => listApiKeys(deps.db, actorOf(request), request.query),
    );

    app.delete(
      '/api-keys/:api_key_id',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['api keys'],
          summary: 'Revoke an API key at once',
          params: Strict({ api_key_id: Uuid }),
          response: { 204: Type.Null(), ...commonErrors },
        },
      },
      async (request, reply) => {
        await revokeApiKey(deps, actorOf(request), request.params.api_key_id);
        return reply.code(204).send(null);
      },
    );
  };
}

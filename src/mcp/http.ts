import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { actorOf } from '../http/auth.js';
import type { Db } from '../storage/database.js';
import { buildMcpServer } from './server.js';

/**
 * MCP over the streamable-HTTP transport at /mcp, stateless: each request gets its own server and
 * transport, built for the key that request authenticated with, so nothing is kept between requests
 * and any process behind a load balancer answers. Hidden from the OpenAPI document: its body is
 * JSON-RPC, not one of the API's schemas.
 */
export function mcpRoutes(deps: { db: Db }) {
  return async (app: FastifyInstance) => {
    const handle = async (request: FastifyRequest, reply: FastifyReply) => {
      const actor = actorOf(request);
      const apiKey = /^Bearer\s+(\S+)/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
      const server = buildMcpServer({ app, db: deps.db, apiKey, actor });
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      reply.hijack();
      reply.raw.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(request.raw, reply.raw, request.body);
    };
    const options = { config: { scope: 'read' as const }, schema: { hide: true } };
    app.post('/mcp', options, handle);
    app.get('/mcp', options, handle);
    app.delete('/mcp', options, handle);
  };
}

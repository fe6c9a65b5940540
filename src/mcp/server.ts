import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { App } from '../http/build-app.js';
import { recordAudit } from '../services/audit.js';
import type { Actor } from '../services/context.js';
import type { Db } from '../storage/database.js';

/** Who the agent is: the API key it came with, and the actor the API's auth made of that key. */
export type McpCaller = {
  app: App;
  db: Db;
  apiKey: string;
  actor: Pick<Actor, 'organizationId' | 'label'>;
};

type Request = {
  method: 'GET' | 'POST' | 'PATCH';
  url: string;
  query?: Record<string, string>;
  body?: unknown;
  idempotencyKey?: string | undefined;
};

const instant = z.string().describe('An instant, RFC 3339 with an offset, e.g. 2026-12-07T09:00:00Z');
const resourceIds = z.array(z.string()).describe('Resource ids (UUIDs)');
const idempotencyKey = z
  .string()
  .optional()
  .describe('Sent as Idempotency-Key: the same key with the same input returns the first answer');
const bookingFields = {
  title: z.string().optional(),
  description: z.string().optional(),
  attendees: z.array(z.object({ email: z.string(), name: z.string().optional() }).passthrough()).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  ignore_availability: z.boolean().optional(),
};

/** The query string of a GET, from the tool's arguments: lists comma-separated, undefined left out. */
function queryOf(args: Record<string, unknown>): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [name, value] of Object.entries(args)) {
    if (value === undefined) continue;
    const text = (item: unknown) => (typeof item === 'string' ? item : JSON.stringify(item));
    query[name] = Array.isArray(value) ? value.map(text).join(',') : text(value);
  }
  return query;
}

function withoutUndefined(args: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(args).filter(([, value]) => value !== undefined));
}

/**
 * An MCP server whose every tool is one request of the HTTP API, run in-process with the caller's key:
 * validation, scopes, organization isolation, idempotency and the audit of changes are the API's own.
 * Each call is audited once more as `mcp.<tool>`, read-only tools too, with the key's label.
 */
export function buildMcpServer(caller: McpCaller): McpServer {
  const server = new McpServer({ name: 'sched', version: '1.0.0' });

  const forward = async (tool: string, request: Request, targetId?: string): Promise<CallToolResult> => {
    const headers: Record<string, string> = { authorization: `Bearer ${caller.apiKey}` };
    if (request.idempotencyKey !== undefined) headers['idempotency-key'] = request.idempotencyKey;
    const response = await caller.app.inject({
      method: request.method,
      url: request.url,
      headers,
      ...(request.query ? { query: request.query } : {}),
      ...(request.body !== undefined ? { payload: request.body as Record<string, unknown> } : {}),
    });
    let payload: Record<string, unknown>;
    try {
      const parsed: unknown = response.body === '' ? {} : JSON.parse(response.body);
      payload =
        parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
          ? (parsed as Record<string, unknown>)
          : { value: parsed };
    } catch {
      payload = { status: response.statusCode, detail: response.body };
    }
    await recordAudit(caller.db, caller.actor, {
      action: `mcp.${tool}`,
      targetType: 'mcp_tool',
      targetId: targetId ?? tool,
      details: { method: request.method, path: request.url, status: response.statusCode },
    });
    const failed = response.statusCode >= 400;
    const result = failed
      ? {
          status: payload.status ?? response.statusCode,
          code: payload.code,
          title: payload.title,
          detail: payload.detail,
          ...(payload.errors !== undefined ? { errors: payload.errors } : {}),
        }
      : payload;
    return {
      content: [{ type: 'text', text: JSON.stringify(result) }],
      structuredContent: result,
      ...(failed ? { isError: true } : {}),
    };
  };

  server.registerTool(
    'find_slots',
    {
      description:
        'Free slots (GET /availability) for one resource, all of several (mode "all") or any of several (mode "any").',
      inputSchema: {
        resource_ids: resourceIds,
        start: instant,
        end: instant,
        duration_minutes: z.number().describe('Length of each slot, 1 to 1440'),
        interval_minutes: z
          .number()
          .optional()
          .describe('Step between slot starts; default duration_minutes'),
        mode: z.string().optional().describe('"all" (default) or "any"'),
        time_zone: z.string().optional().describe('IANA zone for the local times in the answer'),
      },
    },
    async (args) => forward('find_slots', { method: 'GET', url: '/availability', query: queryOf(args) }),
  );

  server.registerTool(
    'hold_slot',
    {
      description:
        'Hold a slot for a few minutes while the caller confirms (POST /holds); book it with the hold.',
      inputSchema: {
        resource_ids: resourceIds,
        start_time: instant,
        end_time: instant,
        assign: z.string().optional().describe('"all" (default) or "one": hold one free resource of them'),
        ttl_seconds: z.number().optional().describe('30 to 3600; default 300'),
        idempotency_key: idempotencyKey,
      },
    },
    async ({ idempotency_key, ...body }) =>
      forward('hold_slot', {
        method: 'POST',
        url: '/holds',
        body: withoutUndefined(body),
        idempotencyKey: idempotency_key,
      }),
  );

  server.registerTool(
    'book',
    {
      description:
        'Book one or more resources (POST /bookings); never overlaps another booking or a live hold.',
      inputSchema: {
        resource_ids: resourceIds,
        start_time: instant,
        end_time: instant,
        ...bookingFields,
        title: z.string(),
        assign: z
          .string()
          .optional()
          .describe('"all" (default) books every resource; "one" books one free of them'),
        hold_id: z.string().optional().describe('A hold from hold_slot for the same time and resources'),
        status: z.string().optional().describe('"confirmed" (default) or "pending" (awaiting confirmation)'),
        recurrence: z
          .record(z.string(), z.unknown())
          .optional()
          .describe(
            'Book a series: {frequency: "daily"|"weekly"|"monthly", interval?, count? | until?, by_weekday?: ["mon",...]}; ' +
              'all occurrences or none',
          ),
        idempotency_key: idempotencyKey,
      },
    },
    async ({ idempotency_key, ...body }) =>
      forward('book', {
        method: 'POST',
        url: '/bookings',
        body: withoutUndefined(body),
        idempotencyKey: idempotency_key,
      }),
  );

  server.registerTool(
    'reschedule',
    {
      description: 'Move or edit a booking (PATCH /bookings/{booking_id}); the same rules as booking.',
      inputSchema: {
        booking_id: z.string(),
        resource_ids: resourceIds.optional(),
        start_time: instant.optional(),
        end_time: instant.optional(),
        ...bookingFields,
      },
    },
    async ({ booking_id, ...body }) =>
      forward(
        'reschedule',
        { method: 'PATCH', url: `/bookings/${encodeURIComponent(booking_id)}`, body: withoutUndefined(body) },
        booking_id,
      ),
  );

  server.registerTool(
    'cancel',
    {
      description: 'Cancel a booking (POST /bookings/{booking_id}/cancel); its slot is free again.',
      inputSchema: { booking_id: z.string(), reason: z.string().optional(), idempotency_key: idempotencyKey },
    },
    async ({ booking_id, idempotency_key, ...body }) =>
      forward(
        'cancel',
        {
          method: 'POST',
          url: `/bookings/${encodeURIComponent(booking_id)}/cancel`,
          body: withoutUndefined(body),
          idempotencyKey: idempotency_key,
        },
        booking_id,
      ),
  );

  server.registerTool(
    'list_bookings',
    {
      description: 'Bookings overlapping a window, by start time (GET /bookings).',
      inputSchema: {
        resource_id: z.string().optional(),
        start: instant.optional(),
        end: instant.optional(),
        status: z.string().optional().describe('"pending", "confirmed", "cancelled" or "rejected"'),
        limit: z.number().optional(),
        cursor: z.string().optional(),
      },
    },
    async (args) => forward('list_bookings', { method: 'GET', url: '/bookings', query: queryOf(args) }),
  );

  server.registerTool(
    'list_booking_pages',
    {
      description:
        'The organization’s booking pages (GET /booking-pages): each with its booking_page_id, slug, ' +
        'title, durations, resources and public url. Pass next_cursor back as cursor for the next page.',
      inputSchema: {
        limit: z.number().optional().describe('Pages per answer'),
        cursor: z.string().optional().describe('next_cursor from the previous answer'),
      },
    },
    async (args) =>
      forward('list_booking_pages', { method: 'GET', url: '/booking-pages', query: queryOf(args) }),
  );

  return server;
}

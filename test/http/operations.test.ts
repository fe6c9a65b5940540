import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import type { App } from '../../src/http/build-app.js';
import { describeOnBackends } from '../support/backends.js';

type OpenApi = {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      { requestBody: { content: Record<string, { schema: { additionalProperties?: boolean } }> } }
    >
  >;
};

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** "GET /bookings/{booking_id}" for every method of every path of the description. */
function specOperations(spec: OpenApi): string[] {
  return Object.entries(spec.paths).flatMap(([route, operations]) =>
    Object.keys(operations)
      .map((method) => method.toUpperCase())
      .filter((method) => METHODS.includes(method))
      .map((method) => `${method} ${route}`),
  );
}

/**
 * Every method and path Fastify has registered, read from printRoutes' tree (each line a segment
 * appended to its parent's, with the methods in parentheses), in OpenAPI's spelling ({param}). HEAD
 * goes: Fastify adds it beside every GET, and OpenAPI does not list it.
 */
function registeredOperations(app: App): string[] {
  const operations: string[] = [];
  const segments: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:│ {3}| {4})*)[├└]── (.*?)(?: \(([A-Z, -]+)\))?$/.exec(line);
    if (!match) continue;
    segments.length = match[1]!.length / 4;
    segments.push(match[2]!);
    const route = segments.join('').replace(/:(\w+)/g, '{$1}');
    for (const method of (match[3] ?? '').split(', ')) {
      if (METHODS.includes(method)) operations.push(`${method} ${route}`);
    }
  }
  return operations;
}

/**
 * The Swagger UI page and its assets (registered by @fastify/swagger-ui), and the MCP endpoint, whose
 * body is JSON-RPC described by the Model Context Protocol rather than by this API's schemas: both
 * are hidden from the description.
 */
function isInternal(operation: string): boolean {
  return /^GET \/docs(\/|$)/.test(operation) || /^(GET|POST|DELETE) \/mcp$/.test(operation);
}

const API_MD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/API.md');
const contractReason =
  existsSync(API_MD) || process.env.CI ? undefined : 'the shared API.md is not beside the repository';

/**
 * "METHOD /path" of every endpoint API.md names in backticks (query strings dropped), in its first part.
 * Part 2 (booking pages, the web, notifications, task links) is not served yet.
 */
function contractOperations(markdown: string): string[] {
  const part1 = markdown.split(/^# Part 2\b/m)[0]!;
  const operations = new Set<string>();
  for (const [, methods, route] of part1.matchAll(
    /`((?:GET|POST|PUT|PATCH|DELETE)(?:\|[A-Z]+)*) (\/[^`\s?]*)/g,
  )) {
    for (const method of methods!.split('|')) operations.add(`${method} ${route}`);
  }
  return [...operations];
}

describeOnBackends('operations endpoints', (t) => {
  it('answers /healthz without a key', async () => {
    const res = await t().request('GET', '/healthz', { key: null });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('checks the database in /readyz', async () => {
    const res = await t().request('GET', '/readyz', { key: null });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', database: t().database.kind });
  });

  it('serves Prometheus metrics', async () => {
    await t().request('GET', '/healthz', { key: null });
    const res = await t().request('GET', '/metrics', { key: null });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain(
      'sched_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}',
    );
  });

  it('describes every route the server registers in /openapi.json, and nothing else', async () => {
    const res = await t().request('GET', '/openapi.json', { key: null });
    expect(res.statusCode).toBe(200);
    const spec = res.json<OpenApi>();
    expect(spec.openapi).toBe('3.1.0');
    const registered = registeredOperations(t().app).filter((operation) => !isInternal(operation));
    expect(registered.length).toBeGreaterThan(30);
    expect(specOperations(spec).sort()).toEqual(registered.sort());
    expect(
      spec.paths['/bookings']!.post!.requestBody.content['application/json']!.schema.additionalProperties,
    ).toBe(false);
  });

  it.skipIf(contractReason)(
    `has every operation of the API.md contract${contractReason ? ` (skipped: ${contractReason})` : ''}`,
    async () => {
      const spec = (await t().request('GET', '/openapi.json', { key: null })).json<OpenApi>();
      const described = new Set(specOperations(spec));
      const registered = new Set(registeredOperations(t().app));
      const contract = contractOperations(readFileSync(API_MD, 'utf8'));
      expect(contract).toContain('GET /bookings/{booking_id}');
      expect(contract.length).toBeGreaterThan(30);
      // /docs is the Swagger UI page: served (checked below), but not an operation of the API itself.
      const missing = contract.filter((operation) =>
        isInternal(operation) ? !registered.has(operation) : !described.has(operation),
      );
      expect(missing).toEqual([]);
    },
  );

  it('serves a docs page at /docs', async () => {
    const res = await t().request('GET', '/docs/', { key: null });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body.toLowerCase()).toContain('swagger');
  });

  it('passes a well-formed x-request-id through and never leaks internals on a 500', async () => {
    const res = await t().request('GET', '/healthz', { key: null, headers: { 'x-request-id': 'trace-123' } });
    expect(res.headers['x-request-id']).toBe('trace-123');
  });
});

import fc from 'fast-check';
import { sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';

/**
 * Every route of /openapi.json, driven with requests built from its own schema and then broken in
 * the ways careless clients and fuzzers break them. Whatever arrives: no 5xx, every 4xx is
 * problem+json with a code, a 400 names a field, and a refused request writes nothing.
 */

type Schema = {
  type?: string;
  format?: string;
  const?: unknown;
  enum?: unknown[];
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema | Schema[];
  prefixItems?: Schema[];
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
};
type Parameter = { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: Schema };
type Operation = {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
};
type Spec = { paths: Record<string, Record<string, Operation>> };

const SEED = 20260316;
const RUNS_PER_OPERATION = 80;
const NOW = '2026-03-16T08:00:00Z';

/** Requests that pass validation may reach a provider; only loopback addresses are ever offered. */
const URLS = ['https://127.0.0.1:9/hook', 'http://127.0.0.1:9/calendar.ics', 'webcal://127.0.0.1:9/x.ics'];

function valid(schema: Schema | undefined, ids: string[], depth = 0): fc.Arbitrary<unknown> {
  if (schema === undefined) return fc.constant('x');
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map((s) => valid(s, ids, depth)));
  switch (schema.type) {
    case 'string':
      switch (schema.format) {
        case 'instant':
          return fc.constantFrom('2026-03-17T10:00:00Z', '2026-03-17T11:00:00+01:00', '2026-03-18T09:30:00Z');
        case 'uuid':
          return fc.constantFrom(...ids);
        case 'time-zone':
          return fc.constantFrom('Europe/Berlin', 'UTC', 'America/New_York');
        case 'local-date':
          return fc.constant('2026-03-20');
        case 'wall-time':
          return fc.constantFrom('09:00', '17:00');
        case 'email':
          return fc.constant('ada@example.test');
        default:
          return fc.oneof(
            fc.string({ minLength: Math.max(1, schema.minLength ?? 0), maxLength: 12 }),
            fc.constantFrom(...URLS),
          );
      }
    case 'integer':
    case 'number':
      return fc.integer({ min: schema.minimum ?? -5, max: Math.min(schema.maximum ?? 1000, 100_000) });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      if (schema.prefixItems) return fc.tuple(...schema.prefixItems.map((s) => valid(s, ids, depth + 1)));
      const items = Array.isArray(schema.items) ? schema.items[0] : schema.items;
      const min = schema.minItems ?? 0;
      return fc.array(valid(items, ids, depth + 1), {
        minLength: min,
        maxLength: Math.max(min, Math.min(schema.maxItems ?? 3, 3)),
      });
    }
    case 'object': {
      if (depth > 4) return fc.constant({});
      const properties = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [name, s] of Object.entries(properties)) record[name] = valid(s, ids, depth + 1);
      if (Object.keys(record).length === 0 && typeof schema.additionalProperties === 'object') {
        return fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), {
          maxKeys: 3,
        });
      }
      return fc.record(record, { requiredKeys: [...required] });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function deeplyNested(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = i % 2 === 0 ? { n: value } : [value];
  return value;
}

/** Values that break a field: wrong types, NUL, sizes and instants the database cannot hold, nesting. */
const BAD_VALUES: fc.Arbitrary<unknown> = fc.constantFrom<unknown>(
  'tr\u0000ue',
  '\u0000',
  'true',
  '123',
  123,
  -1,
  1.5,
  true,
  null,
  [],
  ['a', 'b'],
  {},
  '0000-01-01T00:00:00Z',
  '99999-01-01T00:00:00Z',
  '1899-12-31T23:59:59Z',
  '2026-02-30T10:00:00Z',
  'urn:uuid:00000000-0000-4000-8000-000000000000',
  '{00000000-0000-4000-8000-000000000000}',
  'x'.repeat(5000),
  '\ud800',
  1e308,
  Number.MAX_SAFE_INTEGER + 2,
  deeplyNested(40),
);
const BAD_QUERY_TEXT = fc.constantFrom(
  '1e999',
  'abc',
  '0',
  '501',
  '-1',
  '',
  'a\u0000b',
  '0000-01-01T00:00:00Z',
  '99999-01-01T00:00:00Z',
  'urn:uuid:00000000-0000-4000-8000-000000000000',
  'TRUE',
  '1,2',
  'x'.repeat(5000),
);

type Mutation =
  | { kind: 'none' }
  | { kind: 'body-field'; field: string; value: unknown }
  | { kind: 'unknown-field'; value: unknown }
  | { kind: 'raw-body'; contentType: string | undefined; payload: string }
  | { kind: 'query'; name: string; value: string }
  | { kind: 'path'; value: string }
  | { kind: 'header'; value: string };

function mutations(operation: Operation, bodySchema: Schema | undefined): fc.Arbitrary<Mutation> {
  const fields = Object.keys(bodySchema?.properties ?? {});
  const queryNames = (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
  const options: fc.Arbitrary<Mutation>[] = [
    fc.constant({ kind: 'none' }),
    fc.record({
      kind: fc.constant('raw-body' as const),
      contentType: fc.constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/json',
        undefined,
      ),
      payload: fc.constantFrom(
        '',
        'a=1',
        '{"a":',
        '{"n":1e999}',
        '[]',
        '"text"',
        'null',
        '{"__proto__":{"x":1}}',
      ),
    }),
    fc.record({
      kind: fc.constant('path' as const),
      value: fc.constantFrom('urn:uuid:x', 'a%00b', '%7Bx%7D', '0000'),
    }),
    fc.record({ kind: fc.constant('header' as const), value: fc.constantFrom('k\u0000', 'x'.repeat(300)) }),
    fc.record({ kind: fc.constant('unknown-field' as const), value: BAD_VALUES }),
  ];
  if (fields.length > 0) {
    options.push(
      fc.record({
        kind: fc.constant('body-field' as const),
        field: fc.constantFrom(...fields),
        value: BAD_VALUES,
      }),
    );
  }
  if (queryNames.length > 0) {
    options.push(
      fc.record({
        kind: fc.constant('query' as const),
        name: fc.constantFrom(...queryNames),
        value: BAD_QUERY_TEXT,
      }),
    );
  }
  return fc.oneof(...options);
}

function pathWith(template: string, values: Record<string, unknown>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(values[name])));
}

describeOnBackends(
  'fuzzing every route from its schema',
  (t) => {
    let spec: Spec;
    let ids: string[];

    beforeAll(async () => {
      spec = (await t().request('GET', '/openapi.json', { key: null })).json<Spec>();
      const resource = await createOpenResource(t(), {
        name: 'Ada',
        kind: 'room',
        time_zone: 'Europe/Berlin',
      });
      const booking = await t().request('POST', '/bookings', {
        body: {
          resource_ids: [resource],
          start_time: '2026-03-17T08:00:00Z',
          end_time: '2026-03-17T09:00:00Z',
          title: 'Seed',
        },
      });
      expect(booking.statusCode, booking.body).toBe(201);
      ids = [
        resource,
        booking.json().booking_id as string,
        '00000000-0000-4000-8000-000000000000',
        resource.toUpperCase(),
      ];
    });

    /** What a refused request must leave unchanged. */
    async function rowCounts(): Promise<string> {
      const result = await sql<Record<string, string>>`select
        (select count(*) from audit_log) as audit,
        (select count(*) from resources) as resources,
        (select count(*) from bookings) as bookings,
        (select count(*) from api_keys) as api_keys,
        (select count(*) from webhook_endpoints) as webhooks,
        (select count(*) from calendar_connections) as connections,
        (select count(*) from resource_feeds) as feeds`.execute(t().database.db);
      return JSON.stringify(result.rows[0]);
    }

    it('gives no 5xx, answers every 4xx as problem+json with a code, names a field in every 400, and writes nothing when refusing', async () => {
      const operations = Object.entries(spec.paths).flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, operation]) => ({
          path,
          method: method.toUpperCase(),
          operation,
        })),
      );
      expect(operations.length).toBeGreaterThan(30);
      for (const { path, method, operation } of operations) {
        const bodySchema = operation.requestBody?.content['application/json']?.schema;
        const parameters = operation.parameters ?? [];
        const pathParams = parameters.filter((p) => p.in === 'path');
        const queryParams = parameters.filter((p) => p.in === 'query');
        const request = fc.record({
          path: fc.record(Object.fromEntries(pathParams.map((p) => [p.name, valid(p.schema, ids)]))),
          query: fc.record(Object.fromEntries(queryParams.map((p) => [p.name, valid(p.schema, ids)])), {
            requiredKeys: queryParams.filter((p) => p.required).map((p) => p.name),
          }),
          body: bodySchema ? valid(bodySchema, ids) : fc.constant(undefined),
          mutation: mutations(operation, bodySchema),
        });
        await fc.assert(
          fc.asyncProperty(request, async ({ path: pathValues, query, body, mutation }) => {
            let url = pathWith(path, pathValues);
            const headers: Record<string, string> = { authorization: `Bearer ${t().adminKey}` };
            const search = new URLSearchParams(
              Object.entries(query).map(
                ([name, value]) =>
                  [name, Array.isArray(value) ? value.join(',') : String(value)] as [string, string],
              ),
            );
            let payload: string | undefined = body === undefined ? undefined : JSON.stringify(body);
            if (payload !== undefined) headers['content-type'] = 'application/json';
            switch (mutation.kind) {
              case 'body-field':
                payload = JSON.stringify({ ...(body as object), [mutation.field]: mutation.value });
                headers['content-type'] = 'application/json';
                break;
              case 'unknown-field':
                payload = JSON.stringify({
                  ...(typeof body === 'object' ? body : {}),
                  zz_unknown: mutation.value,
                });
                headers['content-type'] = 'application/json';
                break;
              case 'raw-body':
                payload = mutation.payload;
                if (mutation.contentType === undefined) delete headers['content-type'];
                else headers['content-type'] = mutation.contentType;
                break;
              case 'query':
                search.set(mutation.name, mutation.value);
                break;
              case 'path':
                if (pathParams.length > 0) url = path.replace(/\{(\w+)\}/g, mutation.value);
                break;
              case 'header':
                headers['idempotency-key'] = mutation.value;
                break;
            }
            const query_ = search.toString();
            const before = await rowCounts();
            const res = await t().app.inject({
              method,
              url: query_ ? `${url}?${query_}` : url,
              headers,
              ...(payload !== undefined ? { payload } : {}),
            });
            const where = `${method} ${url} ${JSON.stringify(mutation).slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
            expect(res.statusCode, where).toBeLessThan(500);
            if (res.statusCode >= 400) {
              expect(String(res.headers['content-type']), where).toMatch(/^application\/problem\+json/);
              const problem = res.json<{ code?: unknown; errors?: { field?: unknown }[] }>();
              expect(problem.code, where).toMatch(/^[A-Z][A-Z_]+$/);
              // Every 400 names the field it refuses.
              if (res.statusCode === 400) {
                expect(typeof problem.errors?.[0]?.field, where).toBe('string');
                expect(String(problem.errors?.[0]?.field), where).not.toBe('');
              }
              expect(await rowCounts(), where).toBe(before);
            }
          }),
          { seed: SEED, numRuns: RUNS_PER_OPERATION, endOnFailure: true },
        );
      }
    }, 120_000);
  },
  NOW,
);

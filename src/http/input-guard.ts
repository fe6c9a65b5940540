import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCode, type FieldError, SchedError } from '../services/errors.js';

/** Objects and arrays may nest this deep (the body itself is level 1); deeper is refused. */
export const MAX_NESTING = 32;

// C0 control characters other than tab, line feed and carriage return: PostgreSQL cannot store NUL at
// all, and the rest are never meant in names, titles or ids.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;
// Half a surrogate pair: JSON can spell it (`"\ud800"`), UTF-8 cannot, so it would be stored as U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
};

const INTEGER = /^-?(?:0|[1-9]\d*)$/;
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;

/**
 * One query-string value read as its schema's type: integers and numbers in plain decimal, booleans as
 * `true`/`false`, lists comma-separated or repeated. Anything else is left as text, so the validator
 * refuses it naming the parameter; nothing is guessed (no `1e3`, no hex, no blanks).
 */
function fromQueryText(schema: JsonSchema | undefined, value: unknown): unknown {
  if (schema === undefined) return value;
  if (schema.type === 'array') {
    const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : [value];
    return items.map((item: unknown) => fromQueryText(schema.items, item));
  }
  if (typeof value !== 'string') return value;
  if (schema.type === 'integer' && INTEGER.test(value)) {
    const number = Number(value);
    return Number.isSafeInteger(number) ? number : value;
  }
  if (schema.type === 'number' && NUMBER.test(value)) return Number(value);
  if (schema.type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

function parseQuery(schema: JsonSchema | undefined, query: unknown): unknown {
  const properties = schema?.properties;
  if (properties === undefined || query === null || typeof query !== 'object') return query;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(query)) out[name] = fromQueryText(properties[name], value);
  return out;
}

function describeText(text: string): string | undefined {
  if (CONTROL.test(text)) return 'must not contain control characters (such as NUL)';
  if (LONE_SURROGATE.test(text)) return 'must be valid Unicode text (a lone surrogate was found)';
  return undefined;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  const printable = CONTROL.test(key) || LONE_SURROGATE.test(key) ? JSON.stringify(key).slice(1, -1) : key;
  return path ? `${path}.${printable}` : printable;
}

/** The first value the database could not store as given, with its field; undefined when all is well. */
export function findUnstorable(value: unknown, path: string, depth = 1): FieldError | undefined {
  if (typeof value === 'string') {
    const message = describeText(value);
    return message === undefined ? undefined : { field: path, message };
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { field: path, message: 'must be a finite number' };
    if (Number.isInteger(value) && !Number.isSafeInteger(value))
      return { field: path, message: 'is too large to keep exactly (at most 2^53 - 1)' };
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (depth > MAX_NESTING)
    return { field: path, message: `nests deeper than ${MAX_NESTING} levels of objects and arrays` };
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((item, index) => [index, item])
    : Object.entries(value);
  for (const [key, item] of entries) {
    const field = join(path, key);
    if (typeof key === 'string') {
      const message = describeText(key);
      if (message !== undefined) return { field, message: `the name ${message}` };
    }
    const found = findUnstorable(item, field, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

function refuse(error: FieldError): SchedError {
  return new SchedError(ErrorCode.VALIDATION_FAILED, `${error.field}: ${error.message}`, { errors: [error] });
}

function checkRequest(request: FastifyRequest): FieldError | undefined {
  for (const [name, value] of Object.entries(request.headers)) {
    const values = Array.isArray(value) ? value : [value];
    for (const text of values) {
      const message = typeof text === 'string' ? describeText(text) : undefined;
      if (message !== undefined) return { field: name, message };
    }
  }
  // Names are checked as well as values: a query-string name reaches a handler that takes any names.
  for (const part of [request.params, request.query, request.body]) {
    const found = part === undefined ? undefined : findUnstorable(part, '');
    if (found !== undefined) return found;
  }
  return undefined;
}

function bodyFieldName(error: FieldError): FieldError {
  return error.field === '' ? { ...error, field: 'body' } : error;
}

/**
 * Everything a request carries passes here before schema validation and before any SQL: bodies are
 * JSON or nothing (an empty body is no body, whatever its Content-Type), query values are parsed by
 * their schema's type, and text the database cannot store is a 400 naming the field.
 */
export function registerInputGuard(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      const problem = new SchedError(ErrorCode.VALIDATION_FAILED, 'the body is not valid JSON', {
        errors: [{ field: 'body', message: error instanceof Error ? error.message : 'is not valid JSON' }],
      });
      done(problem, undefined);
    }
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    if (body.length === 0) return done(null, undefined);
    done(
      new SchedError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'send the body as application/json', {
        errors: [{ field: 'content-type', message: 'must be application/json' }],
      }),
      undefined,
    );
  });

  app.addHook('preValidation', async (request) => {
    const schema = request.routeOptions.schema?.querystring as JsonSchema | undefined;
    request.query = parseQuery(schema, request.query);
    const found = checkRequest(request);
    if (found !== undefined) throw refuse(bodyFieldName(found));
  });
}

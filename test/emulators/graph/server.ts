import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { errorBody, GraphError } from './graph-error.js';

/** Prefer header preferences Graph honours on calendar requests. */
export type Prefs = {
  timeZone: string | null;
  immutable: boolean;
  maxPageSize: number | null;
  bodyType: 'text' | 'html' | null;
};

export type Ctx = {
  method: string;
  /** Path without the query, percent-decoded per segment by the route's own captures. */
  path: string;
  params: string[];
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The address the client called: the listener's scheme and the request's Host header. */
  origin: string;
  prefs: Prefs;
  /** Set by a 410 fault rule: a delta call answers as if its sync state were gone. */
  syncStateLost?: boolean;
  json(): unknown;
};

export type Reply =
  { status: number; json?: unknown; text?: string; headers?: Record<string, string> } | { hang: true };

export type Handler = (ctx: Ctx) => Reply | Promise<Reply>;
export type Route = { method: string; pattern: RegExp; handler: Handler };

const MAX_BODY = 4 * 1024 * 1024;

export function parsePrefs(header: string | string[] | undefined): Prefs {
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const zone = /outlook\.timezone\s*=\s*"([^"]*)"/i.exec(text)?.[1];
  const size = /odata\.maxpagesize\s*=\s*(\d+)/i.exec(text)?.[1];
  const body = /outlook\.body-content-type\s*=\s*"?(text|html)"?/i.exec(text)?.[1];
  return {
    timeZone: zone ? zone : null,
    immutable: /IdType\s*=\s*"?ImmutableId"?/i.test(text),
    maxPageSize: size === undefined ? null : Number(size),
    bodyType: body ? (body.toLowerCase() as 'text' | 'html') : null,
  };
}

export function graphErrorReply(error: GraphError): Reply {
  return {
    status: error.status,
    text: errorBody(error.code, error.message),
    headers: { 'content-type': 'application/json', ...error.headers },
  };
}

function send(response: http.ServerResponse, reply: Exclude<Reply, { hang: true }>): void {
  const headers: Record<string, string> = { ...(reply.headers ?? {}) };
  let body = '';
  if (reply.json !== undefined) {
    body = JSON.stringify(reply.json);
    headers['content-type'] ??=
      'application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8';
  } else if (reply.text !== undefined) {
    body = reply.text;
    headers['content-type'] ??= 'text/plain; charset=utf-8';
  }
  response.writeHead(reply.status, headers).end(reply.status === 204 ? undefined : body);
}

export type RunningServer = { server: http.Server; origin: string; close(): Promise<void> };

/** A key and certificate (PEM) to serve https with; absent means plain http. */
export type TlsMaterial = { key: string; cert: string };

/** Host header values that name this listener: loopback names only, with or without a port. */
const HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i;

/**
 * The origin the client called, from the Host header, so that links handed out (nextLink, deltaLink,
 * Location) point where the client already talks to; the listener's own address when Host is missing
 * or names something else.
 */
function calledOrigin(request: http.IncomingMessage, scheme: string, fallback: string): string {
  const host = request.headers.host;
  return host && HOST.test(host) ? `${scheme}://${host}` : fallback;
}

/**
 * A node:http (or node:https) server over a route table. Listens on 127.0.0.1 only. Errors thrown as
 * GraphError become Graph's error JSON; anything else is a 500 in the same shape.
 */
export async function serve(routes: () => Route[], port = 0, tls?: TlsMaterial): Promise<RunningServer> {
  let origin = '';
  const scheme = tls ? 'https' : 'http';
  const listener: http.RequestListener = (request, response) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    request.on('end', () => {
      void (async () => {
        const called = calledOrigin(request, scheme, origin);
        const url = new URL(request.url ?? '/', called);
        const method = (request.method ?? 'GET').toUpperCase();
        const path = url.pathname.replace(/\/+$/, '') || '/';
        let reply: Reply;
        try {
          if (size > MAX_BODY)
            throw new GraphError(413, 'RequestEntityTooLarge', 'The request body is too large.');
          const found = routes().find(
            (r) => (r.method === method || r.method === '*') && r.pattern.test(path),
          );
          if (!found)
            throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${path}'.`);
          const body = Buffer.concat(chunks).toString('utf8');
          const ctx: Ctx = {
            method,
            path,
            params: (found.pattern.exec(path) ?? []).slice(1).map((p) => decodeURIComponent(p ?? '')),
            query: url.searchParams,
            headers: request.headers,
            body,
            origin: called,
            prefs: parsePrefs(request.headers.prefer),
            json() {
              try {
                return body === '' ? {} : (JSON.parse(body) as unknown);
              } catch {
                throw new GraphError(400, 'BadRequest', 'Unable to read JSON request payload.');
              }
            },
          };
          reply = await found.handler(ctx);
        } catch (error) {
          reply =
            error instanceof GraphError
              ? graphErrorReply(error)
              : graphErrorReply(new GraphError(500, 'InternalServerError', String(error)));
        }
        if ('hang' in reply) return;
        if (!response.headersSent) send(response, reply);
      })();
    });
  };
  const server: http.Server = tls
    ? https.createServer({ key: tls.key, cert: tls.cert }, listener)
    : http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  origin = `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    origin,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { selfSignedCertificate } from '../tls.js';
import { handleApi, type ApiAnswer, type ApiContext } from './api-routes.js';
import { GoogleControl } from './control-client.js';
import { handleControl, type ControlContext, type RequestRecord } from './control-routes.js';
import { Faults } from './faults.js';
import type { PagingKnobs } from './listing.js';
import { OAuthServer, type OAuthSettings } from './oauth.js';
import { PushHub } from './push.js';
import { EventStore } from './store.js';

export type GoogleEmulatorOptions = {
  port?: number;
  /** Serve https with a self-signed certificate for 127.0.0.1 (see `caCertificate`); default http. */
  tls?: boolean;
  clientId?: string;
  clientSecret?: string;
  /** Registered redirect URIs; absent accepts any http(s) URI. */
  redirectUris?: string[];
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number | null;
  rotateRefreshTokens?: boolean;
  enforceScopes?: boolean;
  /** The id `primary` stands for. */
  primaryCalendarId?: string;
};

export type GoogleEmulator = {
  /** Origin, e.g. http://127.0.0.1:4010 (https://… with `tls`). */
  url: string;
  /** With `tls`: the PEM certificate the emulator serves, for a client to trust as its CA; else null. */
  caCertificate: string | null;
  /** SCHED_GOOGLE_API_URL */
  apiUrl: string;
  /** SCHED_GOOGLE_AUTH_URL */
  authUrl: string;
  /** SCHED_GOOGLE_TOKEN_URL */
  tokenUrl: string;
  /** SCHED_GOOGLE_REVOKE_URL */
  revokeUrl: string;
  clientId: string;
  clientSecret: string;
  primaryCalendarId: string;
  control: GoogleControl;
  /** The same control calls, answered in this process without HTTP (bulk loading, say). */
  localControl: GoogleControl;
  stop(): Promise<void>;
};

const MAX_BODY = 1024 * 1024;
/** A Host header worth echoing into links: a name or address, an optional port, nothing else. */
const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;
const MAX_LOG = 1000;

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function send(response: ServerResponse, answer: ApiAnswer): void {
  if (answer.kind === 'hang') return;
  if (answer.kind === 'empty') {
    response.writeHead(answer.status).end();
    return;
  }
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=UTF-8',
    ...answer.headers,
  };
  if (answer.status === 302 && headers.location) {
    response.writeHead(302, { location: headers.location }).end();
    return;
  }
  response.writeHead(answer.status, headers).end(answer.body === null ? '' : JSON.stringify(answer.body));
}

/** A stateful, in-memory Google Calendar v3 + OAuth 2.0 server on 127.0.0.1. */
export async function startGoogleEmulator(options: GoogleEmulatorOptions = {}): Promise<GoogleEmulator> {
  const clientId = options.clientId ?? 'sched-test-client.apps.googleusercontent.com';
  const clientSecret = options.clientSecret ?? 'sched-test-secret';
  const primaryCalendarId = options.primaryCalendarId ?? 'owner@example.com';
  const clock = { offsetMs: 0, now: () => Date.now() + clock.offsetMs };
  const oauthDefaults = (): OAuthSettings => ({
    clientId,
    clientSecret,
    redirectUris: options.redirectUris ?? null,
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 3600,
    refreshTokenTtlSeconds: options.refreshTokenTtlSeconds ?? null,
    rotateRefreshTokens: options.rotateRefreshTokens ?? false,
    refreshTokenLimit: 100,
    consent: 'approve',
    enforceScopes: options.enforceScopes ?? true,
  });
  const pagingDefaults = (): PagingKnobs => ({ maxPageSize: null, emptyPages: 0 });

  let push: PushHub | null = null;
  const store = new EventStore(clock.now, (calendarId) => push?.changed(calendarId), primaryCalendarId);
  const oauth = new OAuthServer(clock.now, oauthDefaults());
  const faults = new Faults(clock.now);
  const requests: RequestRecord[] = [];
  const hung = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  const certificate = options.tls ? selfSignedCertificate() : null;
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    void serve(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        response.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
      }
    });
  };
  const server = certificate
    ? https.createServer({ key: certificate.key, cert: certificate.cert }, handler)
    : http.createServer(handler);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const scheme = certificate ? 'https' : 'http';
  const authority = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = `${scheme}://${authority}`;
  const apiUrl = `${url}/calendar/v3`;
  /** The origin the client called: the listener's scheme, the Host header's authority. */
  const originOf = (request: IncomingMessage) => {
    const host = request.headers.host;
    return `${scheme}://${typeof host === 'string' && HOST.test(host) ? host : authority}`;
  };
  push = new PushHub(clock.now);
  const api: ApiContext = { store, oauth, push, faults, paging: pagingDefaults() };
  const control: ControlContext = {
    ...api,
    clock,
    requests,
    resetAll() {
      store.reset();
      oauth.reset();
      Object.assign(oauth.settings, oauthDefaults());
      push.reset();
      faults.clear();
      Object.assign(api.paging, pagingDefaults());
      clock.offsetMs = 0;
      requests.length = 0;
      for (const response of hung) response.destroy();
      hung.clear();
    },
  };

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const target = new URL(request.url ?? '/', url);
    const method = (request.method ?? 'GET').toUpperCase();
    const body = await readBody(request);
    const path = target.pathname;
    if (path.startsWith('/__control/')) {
      send(response, await handleControl(control, method, path.slice('/__control'.length), body));
      return;
    }
    if (path === '/o/oauth2/v2/auth' && method === 'GET') {
      const answer = oauth.authorize(target.searchParams);
      send(response, {
        kind: 'json',
        status: answer.status,
        body: answer.body,
        headers: answer.headers ?? {},
      });
      return;
    }
    if ((path === '/token' || path === '/revoke') && method === 'POST') {
      const form = new URLSearchParams(body);
      for (const [k, v] of target.searchParams) if (!form.has(k)) form.set(k, v);
      const answer =
        path === '/token' ? oauth.token(form, request.headers.authorization) : oauth.revoke(form);
      response.setHeader('cache-control', 'no-store');
      send(response, { kind: 'json', status: answer.status, body: answer.body });
      return;
    }
    if (path.startsWith('/calendar/v3/')) {
      const apiPath = path.slice('/calendar/v3'.length);
      const { answer, delayMs } = handleApi(api, method, apiPath, {
        query: target.searchParams,
        body,
        headers: request.headers,
        apiUrl: `${originOf(request)}/calendar/v3`,
      });
      requests.push({
        method,
        path: apiPath,
        query: target.search,
        status: answer.kind === 'hang' ? 'hang' : answer.status,
        ifMatch: typeof request.headers['if-match'] === 'string' ? request.headers['if-match'] : null,
        authorization: request.headers.authorization ?? null,
        ...(delayMs > 0 ? { delayedMs: delayMs } : {}),
      });
      if (requests.length > MAX_LOG) requests.splice(0, requests.length - MAX_LOG);
      if (answer.kind === 'hang' || delayMs > 0) {
        // Held: a reset or stop ends it; a delayed answer goes out when its time comes.
        hung.add(response);
        response.on('close', () => hung.delete(response));
      }
      if (delayMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
        hung.delete(response);
        if (response.destroyed) return;
      }
      send(response, answer);
      return;
    }
    send(response, {
      kind: 'json',
      status: 404,
      body: {
        error: {
          code: 404,
          message: 'Not Found',
          errors: [{ domain: 'global', reason: 'notFound', message: 'Not Found' }],
        },
      },
    });
  }

  return {
    url,
    caCertificate: certificate?.cert ?? null,
    apiUrl,
    authUrl: `${url}/o/oauth2/v2/auth`,
    tokenUrl: `${url}/token`,
    revokeUrl: `${url}/revoke`,
    clientId,
    clientSecret,
    primaryCalendarId,
    control: new GoogleControl(url, certificate?.cert),
    localControl: new GoogleControl(url, certificate?.cert, async (method, path, body) => {
      const answer = await handleControl(control, method, path, body);
      if (answer.kind === 'hang') throw new Error(`control ${method} ${path} did not answer`);
      const text = answer.kind === 'json' && answer.body !== null ? JSON.stringify(answer.body) : '';
      return { status: answer.status, text };
    }),
    async stop() {
      await push.idle();
      for (const response of hung) response.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

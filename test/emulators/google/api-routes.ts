import type { IncomingMessage } from 'node:http';
import { errors, GoogleApiError } from './errors.js';
import { faultError, type Faults } from './faults.js';
import { queryFreeBusy } from './free-busy.js';
import { listEvents, listInstances, type PagingKnobs } from './listing.js';
import type { MethodGroup, OAuthServer } from './oauth.js';
import type { PushHub } from './push.js';
import type { EventStore } from './store.js';

export type ApiContext = {
  store: EventStore;
  oauth: OAuthServer;
  push: PushHub;
  faults: Faults;
  paging: PagingKnobs;
};

export type ApiAnswer =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'empty'; status: number }
  | { kind: 'hang' };

type Route = {
  method: string;
  pattern: RegExp;
  group: MethodGroup;
  handle: (ctx: ApiContext, params: string[], input: RequestInput) => ApiAnswer;
};

export type RequestInput = {
  query: URLSearchParams;
  body: string;
  headers: IncomingMessage['headers'];
  /** The API root as the client called it (scheme of the listener, host from the Host header). */
  apiUrl: string;
};

const ok = (body: unknown, status = 200): ApiAnswer => ({ kind: 'json', status, body });

function json(input: RequestInput): Record<string, unknown> {
  if (input.body.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(input.body);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // answered below
  }
  throw new GoogleApiError(400, { domain: 'global', reason: 'parseError', message: 'Parse Error' });
}

function sendUpdates(query: URLSearchParams): string | undefined {
  const value = query.get('sendUpdates') ?? undefined;
  if (value !== undefined && !['all', 'externalOnly', 'none'].includes(value)) {
    throw errors.badRequest(`Invalid value for sendUpdates: ${value}`, 'sendUpdates');
  }
  return value;
}

function header(input: RequestInput, name: string): string | undefined {
  const value = input.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

const EVENTS = String.raw`^/calendars/([^/]+)/events`;

const ROUTES: Route[] = [
  {
    method: 'GET',
    pattern: new RegExp(`${EVENTS}$`),
    group: 'eventsRead',
    handle: (ctx, [cal], input) =>
      ok(listEvents(ctx.store, ctx.store.calendar(cal!), input.query, ctx.paging)),
  },
  {
    method: 'POST',
    pattern: new RegExp(`${EVENTS}$`),
    group: 'eventsWrite',
    handle: (ctx, [cal], input) =>
      ok(ctx.store.insert(ctx.store.calendar(cal!), json(input), { sendUpdates: sendUpdates(input.query) })),
  },
  {
    method: 'POST',
    pattern: new RegExp(`${EVENTS}/import$`),
    group: 'eventsWrite',
    handle: (ctx, [cal], input) => {
      const calendar = ctx.store.calendar(cal!);
      const body = json(input);
      if (typeof body.iCalUID !== 'string') throw errors.required('iCalUID');
      const existing = [...calendar.events.values()].find(
        (e) => !e.deleted && !e.body.recurringEventId && e.body.iCalUID === body.iCalUID,
      );
      if (existing) return ok(ctx.store.write(calendar, existing.body.id, body, false));
      return ok(ctx.store.insert(calendar, body));
    },
  },
  {
    method: 'POST',
    pattern: new RegExp(`${EVENTS}/watch$`),
    group: 'eventsRead',
    handle: (ctx, [cal], input) => ok(ctx.push.watch(ctx.store.calendar(cal!), json(input), input.apiUrl)),
  },
  {
    method: 'GET',
    pattern: new RegExp(`${EVENTS}/([^/]+)/instances$`),
    group: 'eventsRead',
    handle: (ctx, [cal, id], input) =>
      ok(listInstances(ctx.store, ctx.store.calendar(cal!), id!, input.query)),
  },
  {
    method: 'GET',
    pattern: new RegExp(`${EVENTS}/([^/]+)$`),
    group: 'eventsRead',
    handle: (ctx, [cal, id], input) => {
      const event = ctx.store.get(ctx.store.calendar(cal!), id!);
      if (header(input, 'if-none-match') === event.etag) return { kind: 'empty', status: 304 };
      return ok(event);
    },
  },
  ...(['PUT', 'PATCH'] as const).map((method): Route => ({
    method,
    pattern: new RegExp(`${EVENTS}/([^/]+)$`),
    group: 'eventsWrite',
    handle: (ctx, [cal, id], input) =>
      ok(
        ctx.store.write(ctx.store.calendar(cal!), id!, json(input), method === 'PATCH', {
          ifMatch: header(input, 'if-match'),
          sendUpdates: sendUpdates(input.query),
        }),
      ),
  })),
  {
    method: 'DELETE',
    pattern: new RegExp(`${EVENTS}/([^/]+)$`),
    group: 'eventsWrite',
    handle: (ctx, [cal, id], input) => {
      ctx.store.remove(ctx.store.calendar(cal!), id!, {
        ifMatch: header(input, 'if-match'),
        sendUpdates: sendUpdates(input.query),
      });
      return { kind: 'empty', status: 204 };
    },
  },
  {
    method: 'GET',
    pattern: /^\/calendars\/([^/]+)$/,
    group: 'calendarsRead',
    handle: (ctx, [cal]) => {
      const calendar = ctx.store.calendar(cal!);
      return ok({
        kind: 'calendar#calendar',
        etag: `"c${calendar.generation}"`,
        id: calendar.id,
        summary: calendar.summary,
        timeZone: calendar.timeZone,
      });
    },
  },
  {
    method: 'GET',
    pattern: /^\/users\/me\/calendarList$/,
    group: 'calendarList',
    handle: (ctx) =>
      ok({
        kind: 'calendar#calendarList',
        items: [...ctx.store.calendars.values()].map((c) => ({
          kind: 'calendar#calendarListEntry',
          id: c.id,
          summary: c.summary,
          timeZone: c.timeZone,
          accessRole: 'owner',
          ...(c.id === ctx.store.primaryId ? { primary: true } : {}),
        })),
      }),
  },
  {
    method: 'POST',
    pattern: /^\/channels\/stop$/,
    group: 'channels',
    handle: (ctx, _params, input) => {
      ctx.push.stop(json(input));
      return { kind: 'empty', status: 204 };
    },
  },
  {
    method: 'POST',
    pattern: /^\/freeBusy$/,
    group: 'freeBusy',
    handle: (ctx, _params, input) => ok(queryFreeBusy(ctx.store, json(input))),
  },
];

/** An answer and how long to hold it back (a delay fault); 0 sends it at once. */
export type ApiOutcome = { answer: ApiAnswer; delayMs: number };

/** One Calendar API call below /calendar/v3: bearer check, injected faults, then the method. */
export function handleApi(ctx: ApiContext, method: string, path: string, input: RequestInput): ApiOutcome {
  let delayMs = 0;
  try {
    const matches = ROUTES.map((route) => ({ route, match: route.pattern.exec(path) })).filter(
      (m) => m.match,
    );
    const found = matches.find((m) => m.route.method === method);
    if (!found) throw errors.notFound();
    ctx.oauth.check(header(input, 'authorization'), found.route.group);
    const fault = ctx.faults.take({ method, path, query: input.query });
    if (fault) {
      const failure = faultError(fault);
      if (failure === 'hang') return { answer: { kind: 'hang' }, delayMs };
      if (failure === 'delay') delayMs = fault.delayMs ?? 0;
      else throw failure;
    }
    const params = found.match!.slice(1).map((p) => decodeURIComponent(p));
    return { answer: found.route.handle(ctx, params, input), delayMs };
  } catch (error) {
    if (error instanceof GoogleApiError) {
      return {
        answer: { kind: 'json', status: error.code, body: error.toJSON(), headers: error.headers },
        delayMs,
      };
    }
    throw error;
  }
}

import type { ApiAnswer, ApiContext } from './api-routes.js';
import { GoogleApiError } from './errors.js';
import { validateRule } from './faults.js';
import { importIcs } from './ics-import.js';
import type { OAuthSettings } from './oauth.js';
import type { PushKnobs } from './push.js';

export type ControlContext = ApiContext & {
  clock: { offsetMs: number; now(): number };
  requests: RequestRecord[];
  resetAll(): void;
};

export type RequestRecord = {
  method: string;
  path: string;
  query: string;
  status: number | 'hang';
  ifMatch: string | null;
  authorization: string | null;
  /** Set when a delay fault held the answer back this long. */
  delayedMs?: number;
};

const ok = (body: unknown = {}, status = 200): ApiAnswer => ({ kind: 'json', status, body });
const fail = (status: number, message: string): ApiAnswer => ({
  kind: 'json',
  status,
  body: { error: message },
});

function object(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('expected a JSON object');
  }
  return value as Record<string, unknown>;
}

function pickKnown<T extends object>(target: T, input: Record<string, unknown>): void {
  for (const key of Object.keys(target)) {
    if (input[key] !== undefined) (target as Record<string, unknown>)[key] = input[key];
  }
}

/** /__control/...: test-only endpoints, no credentials, never faulted. */
export async function handleControl(
  ctx: ControlContext,
  method: string,
  path: string,
  body: string,
): Promise<ApiAnswer> {
  try {
    if (method === 'POST' && path === '/push/idle') {
      await ctx.push.idle();
      return ok({ deliveries: ctx.push.deliveries.length });
    }
    return route(ctx, method, path, body);
  } catch (error) {
    if (error instanceof GoogleApiError) return { kind: 'json', status: error.code, body: error.toJSON() };
    return fail(400, error instanceof Error ? error.message : String(error));
  }
}

function route(ctx: ControlContext, method: string, path: string, body: string): ApiAnswer {
  const { store, oauth, push, faults } = ctx;
  const key = `${method} ${path}`;
  switch (key) {
    case 'POST /reset':
      ctx.resetAll();
      return ok();
    case 'POST /calendars': {
      const input = object(body);
      const calendar = store.createCalendar({
        ...(typeof input.id === 'string' ? { id: input.id } : {}),
        ...(typeof input.summary === 'string' ? { summary: input.summary } : {}),
        ...(typeof input.timeZone === 'string' ? { timeZone: input.timeZone } : {}),
      });
      return ok({ id: calendar.id, timeZone: calendar.timeZone });
    }
    case 'POST /expire-sync-tokens':
      for (const calendar of store.calendars.values()) store.expireSyncTokens(calendar);
      return ok();
    case 'POST /faults':
      faults.add(validateRule(object(body)));
      return ok({ pending: faults.pending });
    case 'DELETE /faults':
      faults.clear();
      return ok();
    case 'PUT /paging': {
      const input = object(body);
      if (input.maxPageSize !== undefined) ctx.paging.maxPageSize = input.maxPageSize as number | null;
      if (input.emptyPages !== undefined) ctx.paging.emptyPages = Number(input.emptyPages);
      return ok(ctx.paging);
    }
    case 'POST /tokens':
      return ok(oauth.mint(object(body)));
    case 'POST /tokens/expire-access':
      return ok({ expired: oauth.expireAccessTokens() });
    case 'POST /tokens/revoke-refresh':
      return ok({ revoked: oauth.revokeRefreshTokens() });
    case 'PUT /oauth': {
      const { clientId: _fixed, ...changes } = object(body);
      pickKnown<OAuthSettings>(oauth.settings, changes);
      const { clientSecret: _secret, ...visible } = oauth.settings;
      return ok(visible);
    }
    case 'PUT /push':
      pickKnown<PushKnobs>(push.knobs, object(body));
      return ok(push.knobs);
    case 'GET /channels':
      return ok({ items: [...push.channels.values()] });
    case 'GET /deliveries':
      return ok({ items: push.deliveries });
    case 'POST /clock': {
      const input = object(body);
      ctx.clock.offsetMs += Number(input.advanceMs ?? 0);
      return ok({ now: ctx.clock.now() });
    }
    case 'GET /requests':
      return ok({ items: ctx.requests });
    case 'DELETE /requests':
      ctx.requests.length = 0;
      return ok();
  }
  const calendarRoute =
    /^\/calendars\/([^/]+)\/(events|import-ics|expire-sync-tokens|purge-tombstones)(?:\/([^/]+))?$/.exec(
      path,
    );
  if (!calendarRoute) return fail(404, `no control endpoint ${key}`);
  const calendar = store.calendar(decodeURIComponent(calendarRoute[1]!));
  const action = calendarRoute[2];
  const eventId = calendarRoute[3] === undefined ? undefined : decodeURIComponent(calendarRoute[3]);
  if (action === 'expire-sync-tokens' && method === 'POST') {
    store.expireSyncTokens(calendar);
    return ok();
  }
  if (action === 'purge-tombstones' && method === 'POST') {
    return ok({ purged: store.purgeTombstones(calendar) });
  }
  if (action === 'import-ics' && method === 'POST') return ok({ items: importIcs(store, calendar, body) });
  if (action === 'events' && eventId === undefined) {
    if (method === 'GET') {
      return ok({
        items: [...calendar.events.values()].map((s) => ({
          ...s.body,
          deleted: s.deleted,
          sendUpdates: s.sendUpdates ?? null,
          insertedWith: s.insertedWith ?? null,
        })),
      });
    }
    if (method === 'POST') return ok(store.insert(calendar, object(body)));
  }
  if (action === 'events' && eventId !== undefined) {
    if (method === 'GET') return ok(store.get(calendar, eventId));
    if (method === 'PUT' || method === 'PATCH') {
      return ok(store.write(calendar, eventId, object(body), method === 'PATCH'));
    }
    if (method === 'DELETE') {
      store.remove(calendar, eventId);
      return ok();
    }
  }
  return fail(404, `no control endpoint ${key}`);
}

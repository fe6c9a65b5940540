import type { DeltaTracker } from './delta.js';
import { parseEventInput } from './event-input.js';
import { type RenderOptions, renderEvent, ORGANIZER } from './event-json.js';
import { badRequest, notFound } from './graph-error.js';
import { decodeId, type ItemKey } from './ids.js';
import type { Instance, Mailbox } from './mailbox.js';
import { parseExpand, parseFilter } from './odata.js';
import { getSchedule } from './schedule.js';
import type { Ctx, Handler, Reply, Route } from './server.js';
import type { Subscriptions } from './subscriptions.js';
import { parseBound } from './times.js';

export type GraphDeps = {
  mailbox: Mailbox;
  delta: DeltaTracker;
  subscriptions: Subscriptions;
  /** Wraps a handler with fault injection and the bearer-token check; `write` needs ReadWrite. */
  api: (write: boolean, handler: Handler) => Handler;
};

const ME = '(?:me|users/[^/]+)';
/** `/calendar` (the default one), `/calendars/{id}`, or nothing (also the default one). */
const CAL = '(?:/calendar|/calendars/([^/]+))?';
const ID = '([^/]+)';
const route = (method: string, path: string, handler: Handler): Route => ({
  method,
  pattern: new RegExp(`^/v1\\.0/${path}$`, 'i'),
  handler,
});

export function renderOptions(ctx: Ctx): RenderOptions {
  return {
    timeZone: ctx.prefs.timeZone,
    immutable: ctx.prefs.immutable,
    bodyType: ctx.prefs.bodyType,
    expand: parseExpand(ctx.query.get('$expand')),
    baseUrl: ctx.origin,
  };
}

function calendarParam(value: string | undefined): string {
  return value ? value : 'primary';
}

/** The item an id names; a default-form id no longer works once its item moved to another calendar. */
function keyOf(
  mailbox: Mailbox,
  id: string,
  calendar: string | undefined,
): { key: ItemKey; calendarId: string | null } {
  const decoded = decodeId(id);
  const event = mailbox.events.get(decoded.eventId);
  if (decoded.calendarId !== null && event && event.calendarId !== decoded.calendarId) throw notFound();
  return { key: decoded, calendarId: calendar ? mailbox.calendar(calendar).id : null };
}

/** $top / Prefer: odata.maxpagesize paging with $skip nextLinks, as Outlook collections page. */
function paged(ctx: Ctx, items: unknown[], context: string): Reply {
  const top = Number(ctx.query.get('$top') ?? ctx.prefs.maxPageSize ?? 10);
  if (!Number.isInteger(top) || top < 1 || top > 1000)
    throw badRequest('$top must be from 1 to 1000.', 'ErrorInvalidUrlQuery');
  const skip = Number(ctx.query.get('$skip') ?? 0);
  const value = items.slice(skip, skip + top);
  const body: Record<string, unknown> = {
    '@odata.context': `${ctx.origin}/v1.0/$metadata#${context}`,
    value,
  };
  if (skip + top < items.length) {
    const next = new URL(`${ctx.origin}${ctx.path}`);
    for (const [name, v] of ctx.query) if (name !== '$skip') next.searchParams.set(name, v);
    next.searchParams.set('$skip', String(skip + top));
    body['@odata.nextLink'] = next.toString();
  }
  return { status: 200, json: body };
}

function windowOf(ctx: Ctx): { start: number; end: number } {
  const start = parseBound(ctx.query.get('startDateTime'));
  const end = parseBound(ctx.query.get('endDateTime'));
  if (start === null || end === null) {
    throw badRequest(
      'This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.',
      'ErrorInvalidParameter',
    );
  }
  return { start, end };
}

function calendarJson(mailbox: Mailbox, id: string): Record<string, unknown> {
  const c = mailbox.calendar(id);
  return {
    id: c.id,
    name: c.name,
    color: 'auto',
    hexColor: c.hexColor,
    isDefaultCalendar: c.isDefault,
    changeKey: c.changeKey,
    canShare: true,
    canViewPrivateItems: true,
    canEdit: true,
    allowedOnlineMeetingProviders: [],
    defaultOnlineMeetingProvider: 'none',
    isTallyingResponses: false,
    isRemovable: !c.isDefault,
    owner: { name: ORGANIZER.emailAddress.name, address: ORGANIZER.emailAddress.address },
  };
}

export function graphRoutes(deps: GraphDeps): Route[] {
  const { mailbox, delta, subscriptions, api } = deps;
  const render = (ctx: Ctx, instance: Instance) => renderEvent(instance, renderOptions(ctx));
  const listed = (ctx: Ctx, instances: Instance[]) => {
    const filter = parseFilter(ctx.query.get('$filter'));
    return (filter ? instances.filter(filter) : instances).map((i) => render(ctx, i));
  };

  return [
    // v1.0 documents delta on the primary calendar's calendarView only (event: delta); the other
    // calendarView and events delta paths are refused as Graph refuses event delta it does not track.
    route(
      'GET',
      `${ME}(?:(?:/calendar|/calendars/[^/]+)/calendarView|${CAL}/events)/delta(?:\\(\\))?`,
      api(false, () => {
        throw badRequest(
          "Unsupported request: Change tracking is not supported against 'microsoft.graph.event'.",
          'BadRequest',
        );
      }),
    ),
    route(
      'GET',
      ME,
      api(false, (ctx) => ({
        status: 200,
        json: {
          '@odata.context': `${ctx.origin}/v1.0/$metadata#users/$entity`,
          id: mailbox.userId,
          displayName: ORGANIZER.emailAddress.name,
          mail: ORGANIZER.emailAddress.address,
          userPrincipalName: ORGANIZER.emailAddress.address,
        },
      })),
    ),
    route(
      'GET',
      `${ME}/calendars`,
      api(false, (ctx) =>
        paged(
          ctx,
          [...mailbox.calendars.keys()].map((id) => calendarJson(mailbox, id)),
          'users/calendars',
        ),
      ),
    ),
    route(
      'POST',
      `${ME}/calendars`,
      api(true, (ctx) => {
        const { name } = ctx.json() as { name?: unknown };
        if (typeof name !== 'string' || name === '') throw badRequest('A calendar needs a name.');
        return { status: 201, json: calendarJson(mailbox, mailbox.createCalendar(name).id) };
      }),
    ),
    route(
      'GET',
      `${ME}(?:/calendar|/calendars/${ID})`,
      api(false, (ctx) => ({
        status: 200,
        json: calendarJson(mailbox, calendarParam(ctx.params[0])),
      })),
    ),
    route(
      'DELETE',
      `${ME}/calendars/${ID}`,
      api(true, (ctx) => {
        mailbox.deleteCalendar(ctx.params[0]!);
        return { status: 204 };
      }),
    ),
    route(
      'GET',
      `${ME}${CAL}/events`,
      api(false, (ctx) => {
        const items = mailbox.items(calendarParam(ctx.params[0])).sort((a, b) => a.start - b.start);
        return paged(ctx, listed(ctx, items), 'users/events');
      }),
    ),
    route(
      'POST',
      `${ME}${CAL}/events`,
      api(true, (ctx) => {
        const input = parseEventInput(ctx.json());
        const { event } = mailbox.createEvent(calendarParam(ctx.params[0]), input);
        const instance = mailbox.instance({ eventId: event.id, originalStart: null });
        // The create answer leaves extended properties out even when they were set.
        return { status: 201, json: renderEvent(instance, { ...renderOptions(ctx), expand: null }) };
      }),
    ),
    route(
      'GET',
      `${ME}${CAL}/events/${ID}`,
      api(false, (ctx) => {
        const { key, calendarId } = keyOf(mailbox, ctx.params[1]!, ctx.params[0]);
        return { status: 200, json: render(ctx, mailbox.instance(key, calendarId)) };
      }),
    ),
    route(
      'PATCH',
      `${ME}${CAL}/events/${ID}`,
      api(true, (ctx) => {
        const { key, calendarId } = keyOf(mailbox, ctx.params[1]!, ctx.params[0]);
        mailbox.instance(key, calendarId);
        const updated = mailbox.updateEvent(key, parseEventInput(ctx.json()), header(ctx, 'if-match'));
        return { status: 200, json: renderEvent(updated, { ...renderOptions(ctx), expand: null }) };
      }),
    ),
    route(
      'DELETE',
      `${ME}${CAL}/events/${ID}`,
      api(true, (ctx) => {
        const { key, calendarId } = keyOf(mailbox, ctx.params[1]!, ctx.params[0]);
        mailbox.instance(key, calendarId);
        mailbox.deleteEvent(key, header(ctx, 'if-match'));
        return { status: 204 };
      }),
    ),
    route(
      'GET',
      `${ME}${CAL}/events/${ID}/instances`,
      api(false, (ctx) => {
        const { key } = keyOf(mailbox, ctx.params[1]!, ctx.params[0]);
        const master = mailbox.instance(key);
        if (master.type !== 'seriesMaster') throw badRequest('The item is not a recurring series master.');
        const { start, end } = windowOf(ctx);
        const instances = mailbox
          .instancesIn(master.event.calendarId, start, end)
          .filter((i) => i.key.eventId === key.eventId && i.type !== 'seriesMaster');
        return paged(ctx, listed(ctx, instances), 'Collection(event)');
      }),
    ),
    route(
      'GET',
      `${ME}${CAL}/calendarView`,
      api(false, (ctx) => {
        const { start, end } = windowOf(ctx);
        return paged(
          ctx,
          listed(ctx, mailbox.instancesIn(calendarParam(ctx.params[0]), start, end)),
          'users/calendarView',
        );
      }),
    ),
    route(
      'GET',
      `${ME}/calendarView/delta`,
      api(false, (ctx) => {
        const reply = delta.handle({
          base: `${ctx.origin}${ctx.path}`,
          calendarId: mailbox.defaultCalendar.id,
          lost: ctx.syncStateLost === true,
          query: ctx.query,
          pageSize: ctx.prefs.maxPageSize,
          immutable: ctx.prefs.immutable,
          render: (instance) => renderEvent(instance, { ...renderOptions(ctx), expand: null }),
        });
        return { status: reply.status, json: reply.body, headers: reply.headers };
      }),
    ),
    route(
      'POST',
      `${ME}/calendar/getSchedule`,
      api(false, (ctx) => ({
        status: 200,
        json: getSchedule(mailbox, ctx.json(), ctx.prefs.timeZone),
      })),
    ),
    route(
      'POST',
      'subscriptions',
      api(false, async (ctx) => {
        const sub = await subscriptions.create(ctx.json() as Record<string, unknown>, ctx.prefs.immutable);
        return { status: 201, json: subscriptions.json(sub, ctx.origin) };
      }),
    ),
    route(
      'GET',
      'subscriptions',
      api(false, (ctx) => ({
        status: 200,
        json: { value: subscriptions.list().map((s) => subscriptions.json(s, ctx.origin)) },
      })),
    ),
    route(
      'GET',
      `subscriptions/${ID}`,
      api(false, (ctx) => ({
        status: 200,
        json: subscriptions.json(subscriptions.get(ctx.params[0]!), ctx.origin),
      })),
    ),
    route(
      'PATCH',
      `subscriptions/${ID}`,
      api(false, (ctx) => ({
        status: 200,
        json: subscriptions.json(
          subscriptions.renew(ctx.params[0]!, ctx.json() as Record<string, unknown>),
          ctx.origin,
        ),
      })),
    ),
    route(
      'DELETE',
      `subscriptions/${ID}`,
      api(false, (ctx) => {
        subscriptions.remove(ctx.params[0]!);
        return { status: 204 };
      }),
    ),
    route(
      'POST',
      `subscriptions/${ID}/reauthorize`,
      api(false, (ctx) => {
        subscriptions.get(ctx.params[0]!);
        return { status: 200, json: {} };
      }),
    ),
  ];
}

function header(ctx: Ctx, name: string): string | null {
  const value = ctx.headers[name];
  return typeof value === 'string' ? value : null;
}

import { type GraphControl, requireString } from './control.js';
import type { FaultRule } from './faults.js';
import type { LifecycleEvent } from './subscriptions.js';
import type { Ctx, Handler, Route } from './server.js';

const route = (method: string, path: string, handler: Handler): Route => ({
  method,
  pattern: new RegExp(`^/__control/${path}$`),
  handler,
});

const ok = (json: unknown = { ok: true }) => ({ status: 200, json });
const body = (ctx: Ctx) => (ctx.json() ?? {}) as Record<string, unknown>;

/** The HTTP face of GraphControl, for the standalone emulator. Documented in README.md. */
export function controlRoutes(control: GraphControl): Route[] {
  return [
    route('POST', 'reset', () => {
      control.reset();
      return ok();
    }),
    route('POST', 'tokens', (ctx) => {
      const input = body(ctx);
      const grant = control.mintToken({
        ...(Array.isArray(input.scopes) ? { scopes: input.scopes.map(String) } : {}),
        ...(typeof input.ttlSeconds === 'number' ? { ttlSeconds: input.ttlSeconds } : {}),
      });
      return {
        status: 201,
        json: {
          access_token: grant.accessToken,
          refresh_token: grant.refreshToken,
          expires_in: grant.expiresIn,
        },
      };
    }),
    route('POST', 'tokens/expire', () => {
      control.expireAccessTokens();
      return ok();
    }),
    route('POST', 'tokens/revoke', (ctx) => {
      const token = body(ctx).refreshToken;
      return ok({ revoked: control.revokeRefreshTokens(typeof token === 'string' ? token : undefined) });
    }),
    route('POST', 'oauth/deny-next', (ctx) => {
      const input = body(ctx);
      control.denyNextAuthorization(
        typeof input.error === 'string' ? input.error : undefined,
        typeof input.error_description === 'string' ? input.error_description : undefined,
      );
      return ok();
    }),
    route('POST', 'calendars', (ctx) => ({
      status: 201,
      json: control.createCalendar(requireString(body(ctx).name, 'name')),
    })),
    route('POST', 'calendars/([^/]+)/events', (ctx) => {
      const { iCalUId, ...event } = body(ctx);
      const options = typeof iCalUId === 'string' ? { iCalUId } : {};
      return { status: 201, json: control.putEvent(ctx.params[0]!, event, options) };
    }),
    route('POST', 'events/([^/]+)/cancel', (ctx) => {
      control.cancelEvent(ctx.params[0]!);
      return ok();
    }),
    route('POST', 'events/([^/]+)/move', (ctx) =>
      ok(control.moveEvent(ctx.params[0]!, requireString(body(ctx).calendarId, 'calendarId'))),
    ),
    route('POST', 'delta/expire', () => {
      control.expireDeltaTokens();
      return ok();
    }),
    route('POST', 'delta/config', (ctx) => {
      control.configureDelta(body(ctx));
      return ok(control.state.delta.options);
    }),
    route('POST', 'faults', (ctx) => {
      control.addFault(body(ctx) as FaultRule);
      return ok();
    }),
    route('DELETE', 'faults', () => {
      control.clearFaults();
      return ok();
    }),
    route('POST', 'concurrency', (ctx) => {
      const max = body(ctx).max;
      control.setMaxConcurrentRequests(typeof max === 'number' ? max : null);
      return ok();
    }),
    route('GET', 'subscriptions', () => ok({ value: control.subscriptions() })),
    route('POST', 'subscriptions/config', (ctx) => {
      control.configureSubscriptions(body(ctx));
      return ok(control.state.subscriptions.options);
    }),
    route('POST', 'subscriptions/([^/]+)/lifecycle', async (ctx) =>
      ok(
        await control.sendLifecycle(
          ctx.params[0]!,
          requireString(body(ctx).lifecycleEvent, 'lifecycleEvent') as LifecycleEvent,
        ),
      ),
    ),
    route('DELETE', 'subscriptions/([^/]+)', (ctx) => {
      control.removeSubscription(ctx.params[0]!);
      return ok();
    }),
    route('GET', 'deliveries', () => ok({ value: control.deliveries() })),
    route('POST', 'deliveries/config', (ctx) => {
      const input = body(ctx);
      control.setNotificationDelivery({
        ...(typeof input.drop === 'boolean' ? { drop: input.drop } : {}),
        ...(typeof input.duplicate === 'boolean' ? { duplicate: input.duplicate } : {}),
      });
      return ok();
    }),
    route('GET', 'requests', () => ok({ value: control.requests() })),
    route('POST', 'clock', (ctx) => {
      const advance = body(ctx).advanceMs;
      if (typeof advance === 'number') control.advanceTime(advance);
      return ok({ now: new Date(control.state.clock()).toISOString() });
    }),
  ];
}

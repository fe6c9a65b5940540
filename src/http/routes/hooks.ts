import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { CalendarDeps } from '../../calendar/index.js';
import { finishAuthorization } from '../../calendar/index.js';
import {
  acceptGoogleNotification,
  acceptOutlookLifecycle,
  acceptOutlookNotifications,
} from '../../calendar/index.js';
import { SchedError } from '../../services/errors.js';
import { consentPage, wantsHtml } from '../consent-page.js';
import { problemFor } from '../problem-details.js';
import { registerRateLimit } from '../rate-limit.js';
import { commonErrors, ProblemRef, Strict } from '../schemas.js';

const OAuthProvider = Type.Union([Type.Literal('google'), Type.Literal('outlook')]);
/** Graph's validation handshake: the token comes back as plain text, within 10 seconds. */
const ValidationQuery = Type.Object({ validationToken: Type.Optional(Type.String({ maxLength: 4096 })) });

/** Requests per minute a client address may make to /hooks/*; providers retry a 429 later. */
export const HOOK_RATE_LIMIT_PER_MINUTE = 600;

/** Each hook route counts its own requests per client address. */
const hookRateLimit = {
  rateLimit: { max: HOOK_RATE_LIMIT_PER_MINUTE, timeWindow: 60_000 },
};

/** Graph's token, echoed as it came: plain text that no browser may sniff into anything else. */
function echoValidationToken(reply: FastifyReply, token: string) {
  return reply
    .code(200)
    .type('text/plain; charset=utf-8')
    .header('x-content-type-options', 'nosniff')
    .send(token);
}

/**
 * Routes the providers and users' browsers call, without an API key. Each is verified on its own
 * terms (channel token, clientState, OAuth state), answers at once, and never trusts a notification
 * for more than "sync this connection now": the sync then asks the provider itself.
 */
export function hookRoutes(deps: CalendarDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    // Only the routes that ask for it (config.rateLimit) are limited: the /hooks/* ones.
    await registerRateLimit(app, 'too many notifications from this address');

    app.get(
      '/oauth/:provider/callback',
      {
        schema: {
          tags: ['calendars'],
          summary: 'Where the provider sends the user back after consent; finishes the connection',
          security: [],
          params: Strict({ provider: OAuthProvider }),
          querystring: Type.Record(Type.String(), Type.String({ maxLength: 4096 })),
          response: {
            200: {
              description:
                'JSON for API clients; a browser (Accept: text/html) gets a small page saying what happened, also on failure',
              content: {
                'application/json': {
                  schema: Type.Object({
                    message: Type.String(),
                    connection: Type.Record(Type.String(), Type.Unknown()),
                  }),
                },
                'text/html': { schema: Type.String() },
              },
            },
            ...commonErrors,
            502: ProblemRef,
          },
        },
      },
      async (request, reply) => {
        if (!wantsHtml(request)) return finishAuthorization(deps, request.params.provider, request.query);
        // A person's browser, back from consent: a page in plain words rather than JSON.
        try {
          const done = await finishAuthorization(deps, request.params.provider, request.query);
          const calendar = String(done.connection.display_name ?? done.connection.calendar_id);
          return reply
            .code(200)
            .type('text/html; charset=utf-8')
            .send(
              consentPage({
                ok: true,
                title: done.message,
                detail: `Sched now keeps the calendar “${calendar}” in sync. Bookings appear there, and its events block booked time.`,
              }),
            );
        } catch (error) {
          if (!(error instanceof SchedError)) throw error;
          const problem = problemFor(error);
          return reply
            .code(problem.status)
            .type('text/html; charset=utf-8')
            .send(
              consentPage({ ok: false, title: 'The calendar was not connected', detail: problem.detail }),
            );
        }
      },
    );

    app.post(
      '/hooks/google',
      {
        schema: {
          tags: ['hooks'],
          summary: 'Google Calendar push notifications (channel id, token and resource id checked)',
          security: [],
        },
        config: hookRateLimit,
      },
      async (request, reply) => {
        await acceptGoogleNotification(deps, request.headers);
        // Always 200: anything else makes Google retry, and an ignored channel would retry forever.
        return reply.code(200).send();
      },
    );

    app.post(
      '/hooks/outlook',
      {
        schema: {
          tags: ['hooks'],
          summary: 'Microsoft Graph change notifications (validation handshake; clientState checked)',
          security: [],
          querystring: ValidationQuery,
        },
        config: hookRateLimit,
      },
      async (request, reply) => {
        const token = request.query.validationToken;
        if (token !== undefined) return echoValidationToken(reply, token);
        await acceptOutlookNotifications(deps, request.body);
        return reply.code(202).send();
      },
    );

    app.post(
      '/hooks/outlook/lifecycle',
      {
        schema: {
          tags: ['hooks'],
          summary: 'Microsoft Graph lifecycle notifications: reauthorize, recreate, catch up by delta',
          security: [],
          querystring: ValidationQuery,
        },
        config: hookRateLimit,
      },
      async (request, reply) => {
        const token = request.query.validationToken;
        if (token !== undefined) return echoValidationToken(reply, token);
        await acceptOutlookLifecycle(deps, request.body);
        return reply.code(202).send();
      },
    );
  };
}

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { WEBHOOK_EVENT_TYPES } from '../../services/webhook-events.js';
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listDeliveries,
  listWebhooks,
  retryDelivery,
  rotateWebhookSecret,
  updateWebhook,
  type WebhookDeps,
} from '../../services/webhooks.js';
import { actorOf } from '../auth.js';
import { commonErrors, PageQuery, ProblemRef, Strict, Uuid } from '../schemas.js';

const EventType = Type.String({ description: `One of ${WEBHOOK_EVENT_TYPES.join(', ')}`, maxLength: 100 });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);
const Webhook = Type.Object({
  webhook_id: Type.String(),
  url: Type.String(),
  events: Type.Array(Type.String()),
  description: Nullable(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('paused'), Type.Literal('disabled')]),
  disabled_reason: Nullable(Type.String()),
  previous_secret_expires_at: Nullable(
    Type.String({ description: 'While set, the previous secret signs too' }),
  ),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const WithSecret = Type.Object({
  ...Webhook.properties,
  secret: Type.String({ description: 'whsec_…, shown only in this response' }),
});
const DeliveryStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
]);
const Delivery = Type.Object({
  delivery_id: Type.String({
    description: 'Sent as webhook-id "msg_<delivery_id>", the same on every attempt',
  }),
  webhook_id: Type.String(),
  event_id: Type.String(),
  event_type: Type.String(),
  status: DeliveryStatus,
  attempts: Type.Integer(),
  last_attempt_at: Nullable(Type.String()),
  response_status: Nullable(Type.Integer()),
  latency_ms: Nullable(Type.Integer()),
  response_excerpt: Nullable(Type.String()),
  error: Nullable(Type.String()),
  next_attempt_at: Nullable(Type.String()),
  created_at: Type.String(),
});
const Url = Type.String({
  minLength: 1,
  maxLength: 2000,
  description: 'https; http only towards SCHED_OUTBOUND_ALLOW',
});
const Description = Nullable(Type.String({ maxLength: 500 }));
const Events = Type.Array(EventType, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length });
const Params = Strict({ webhook_id: Uuid });
const tags = ['webhooks'];

export function webhookRoutes(deps: WebhookDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/webhooks',
      {
        config: { scope: 'admin' },
        schema: {
          tags,
          summary: 'Subscribe a URL to events; the signing secret is shown once',
          body: Strict({ url: Url, events: Events, description: Type.Optional(Description) }),
          response: { 201: WithSecret, ...commonErrors, 409: ProblemRef, 422: ProblemRef },
        },
      },
      async (request, reply) =>
        reply.code(201).send(await createWebhook(deps, actorOf(request), request.body)),
    );

    app.get(
      '/webhooks',
      {
        config: { scope: 'admin' },
        schema: {
          tags,
          querystring: Strict(PageQuery),
          response: {
            200: Type.Object({ webhooks: Type.Array(Webhook), next_cursor: Nullable(Type.String()) }),
            ...commonErrors,
          },
        },
      },
      async (request) => listWebhooks(deps, actorOf(request), request.query),
    );

    app.get(
      '/webhooks/:webhook_id',
      {
        config: { scope: 'admin' },
        schema: { tags, params: Params, response: { 200: Webhook, ...commonErrors } },
      },
      async (request) => getWebhook(deps, actorOf(request), request.params.webhook_id),
    );

    app.patch(
      '/webhooks/:webhook_id',
      {
        config: { scope: 'admin' },
        schema: {
          tags,
          summary: 'Change the URL, events or description; pause ("paused") or resume ("active")',
          params: Params,
          body: Strict({
            url: Type.Optional(Url),
            events: Type.Optional(Events),
            description: Type.Optional(Description),
            status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('paused')])),
          }),
          response: { 200: Webhook, ...commonErrors },
        },
      },
      async (request) => updateWebhook(deps, actorOf(request), request.params.webhook_id, request.body),
    );

    app.delete(
      '/webhooks/:webhook_id',
      {
        config: { scope: 'admin' },
        schema: { tags, params: Params, response: { 204: Type.Null(), ...commonErrors } },
      },
      async (request, reply) => {
        await deleteWebhook(deps, actorOf(request), request.params.webhook_id);
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/webhooks/:webhook_id/rotate-secret',
      {
        config: { scope: 'admin' },
        schema: {
          tags,
          summary: 'Make a new signing secret; the old one keeps signing too for 24 hours',
          params: Params,
          response: { 200: WithSecret, ...commonErrors, 409: ProblemRef, 422: ProblemRef },
        },
      },
      async (request) => rotateWebhookSecret(deps, actorOf(request), request.params.webhook_id),
    );

    app.get(
      '/webhooks/:webhook_id/deliveries',
      {
        config: { scope: 'admin' },
        schema: {
          tags,
          summary: 'The delivery log, newest first',
          params: Params,
          querystring: Strict({ ...PageQuery, status: Type.Optional(DeliveryStatus) }),
          response: {
            200: Type.Object({ deliveries: Type.Array(Delivery), next_cursor: Nullable(Type.String()) }),
            ...commonErrors,
          },
        },
      },
      async (request) => listDeliveries(deps, actorOf(request), request.params.webhook_id, request.query),
    );

    app.post(
      '/webhooks/:webhook_id/deliveries/:delivery_id/retry',
      {
        config: { scope: 'admin' },
        schema: {
          tags,
          summary: 'Send a delivery again now, with the same webhook-id',
          params: Strict({ webhook_id: Uuid, delivery_id: Uuid }),
          response: { 200: Delivery, ...commonErrors, 409: ProblemRef, 422: ProblemRef },
        },
      },
      async (request) =>
        retryDelivery(deps, actorOf(request), request.params.webhook_id, request.params.delivery_id),
    );
  };
}

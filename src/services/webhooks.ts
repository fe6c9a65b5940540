import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { OutboundGuard } from '../integrations/index.js';
import { OutboundRefusedError } from '../integrations/index.js';
import type { SecretBox } from '../security/secret-box.js';
import type { Db } from '../storage/database.js';
import { recordAudit } from './audit.js';
import type { Actor, ServiceDeps } from './context.js';
import { ErrorCode, SchedError, validationError } from './errors.js';
import { afterKey, finishPage, pageOf, timeKey } from './pagination.js';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './webhook-events.js';

export type WebhookDeps = ServiceDeps & { secretBox: SecretBox; guard: OutboundGuard };

/** Both secrets sign for this long after a rotation, so receivers can switch without losing events. */
export const ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;

export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export type WebhookView = {
  webhook_id: string;
  url: string;
  events: WebhookEventType[];
  description: string | null;
  status: 'active' | 'paused' | 'disabled';
  disabled_reason: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
};

type EndpointRow = {
  webhook_id: string;
  url: string;
  events: string[];
  description: string | null;
  status: 'active' | 'paused' | 'disabled';
  disabled_reason: string | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
};

/**
 * A receiver's URL may carry a token in its query; views (and so the audit log) show the parameter
 * names with their values masked, and only deliveries use the URL as given. The `url` column holds
 * this masked form and `url_sealed` the URL as given.
 */
export function maskedWebhookUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (!parsed.search) return url;
  const names = [...parsed.searchParams.keys()];
  parsed.search = '';
  return `${parsed.toString()}?${names.map((name) => `${encodeURIComponent(name)}=***`).join('&')}`;
}

function webhookView(row: EndpointRow, now: number): WebhookView {
  const overlapEnds = row.previous_secret_expires_at;
  return {
    webhook_id: row.webhook_id,
    url: maskedWebhookUrl(row.url),
    events: row.events as WebhookEventType[],
    description: row.description,
    status: row.status,
    disabled_reason: row.disabled_reason,
    previous_secret_expires_at: overlapEnds && overlapEnds.getTime() > now ? overlapEnds.toISOString() : null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

const ENDPOINT_COLUMNS = [
  'webhook_id',
  'url',
  'events',
  'description',
  'status',
  'disabled_reason',
  'previous_secret_expires_at',
  'created_at',
  'updated_at',
] as const;

function checkEvents(events: readonly string[]): WebhookEventType[] {
  events.forEach((event, index) => {
    if (!(WEBHOOK_EVENT_TYPES as readonly string[]).includes(event)) {
      throw validationError(
        `events[${index}]`,
        `unknown event type; known: ${WEBHOOK_EVENT_TYPES.join(', ')}`,
      );
    }
  });
  return [...new Set(events)] as WebhookEventType[];
}

/**
 * A login in the URL would be stored and shown with it wherever the URL is; deliveries are authenticated
 * by their signature instead, so such a URL is refused (without echoing it).
 */
function refuseUserinfo(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return; // the guard below names what is wrong with it
  }
  if (parsed.username || parsed.password) {
    throw validationError(
      'url',
      'must not carry a user name or password; check the webhook signature instead',
    );
  }
}

/** The columns a URL is stored in: masked where it is read, sealed for the deliveries. */
function storedUrl(box: SecretBox, url: string): { url: string; url_sealed: string } {
  return { url: maskedWebhookUrl(url), url_sealed: box.seal(url) };
}

/**
 * Seals the URLs of subscriptions made before URLs were sealed, and masks their `url`. Run at every
 * start (a no-op once done); each row changes only if it is still as read, so two processes starting
 * together, or a PATCH meanwhile, lose nothing.
 */
export async function sealPlaintextWebhookUrls(db: Db, box: SecretBox): Promise<number> {
  const rows = await db
    .selectFrom('webhook_endpoints')
    .select(['webhook_id', 'url'])
    .where('url_sealed', 'is', null)
    .execute();
  let sealed = 0;
  for (const row of rows) {
    const updated = await db
      .updateTable('webhook_endpoints')
      .set(storedUrl(box, row.url))
      .where('webhook_id', '=', row.webhook_id)
      .where('url_sealed', 'is', null)
      .where('url', '=', row.url)
      .executeTakeFirst();
    sealed += Number(updated.numUpdatedRows);
  }
  return sealed;
}

async function checkUrl(guard: OutboundGuard, url: string): Promise<string> {
  refuseUserinfo(url);
  try {
    return (await guard.checkUrlResolved(url, { httpOnlyIfAllowed: true })).toString();
  } catch (error) {
    if (error instanceof OutboundRefusedError) throw validationError('url', error.reason);
    throw error;
  }
}

async function findEndpoint(
  db: Db,
  actor: Actor,
  webhookId: string,
  forUpdate = false,
): Promise<EndpointRow> {
  let select = db
    .selectFrom('webhook_endpoints')
    .select(ENDPOINT_COLUMNS)
    .where('webhook_id', '=', webhookId)
    .where('organization_id', '=', actor.organizationId);
  if (forUpdate) select = select.forUpdate();
  const row = await select.executeTakeFirst();
  if (!row) throw new SchedError(ErrorCode.WEBHOOK_NOT_FOUND, `no webhook ${webhookId}`);
  return row;
}

export async function createWebhook(
  deps: WebhookDeps,
  actor: Actor,
  input: { url: string; events: string[]; description?: string | null | undefined },
): Promise<WebhookView & { secret: string }> {
  const events = checkEvents(input.events);
  const url = await checkUrl(deps.guard, input.url);
  const secret = generateWebhookSecret();
  return deps.db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('webhook_endpoints')
      .values({
        organization_id: actor.organizationId,
        ...storedUrl(deps.secretBox, url),
        events,
        description: input.description ?? null,
        secret_sealed: deps.secretBox.seal(secret),
      })
      .returning(ENDPOINT_COLUMNS)
      .executeTakeFirstOrThrow();
    const view = webhookView(row, deps.clock());
    await recordAudit(trx, actor, {
      action: 'webhook.created',
      targetType: 'webhook',
      targetId: row.webhook_id,
      details: { webhook: view },
    });
    return { ...view, secret };
  });
}

export async function getWebhook(deps: WebhookDeps, actor: Actor, webhookId: string): Promise<WebhookView> {
  return webhookView(await findEndpoint(deps.db, actor, webhookId), deps.clock());
}

export async function listWebhooks(
  deps: WebhookDeps,
  actor: Actor,
  query: { limit?: number; cursor?: string },
): Promise<{ webhooks: WebhookView[]; next_cursor: string | null }> {
  const page = pageOf(query);
  let select = deps.db
    .selectFrom('webhook_endpoints')
    .select(ENDPOINT_COLUMNS)
    .select(timeKey('created_at').as('cursor_time'))
    .where('organization_id', '=', actor.organizationId);
  if (page.after) select = select.where(afterKey('created_at', 'webhook_id', page.after));
  const rows = await select
    .orderBy('created_at')
    .orderBy('webhook_id')
    .limit(page.limit + 1)
    .execute();
  const { items, nextCursor } = finishPage(rows, page.limit, (row) => row.webhook_id);
  const now = deps.clock();
  return { webhooks: items.map((row) => webhookView(row, now)), next_cursor: nextCursor };
}

/**
 * Pausing keeps recording deliveries and sends them on resume; resuming a disabled subscription
 * starts it afresh, its failure streak forgotten.
 */
export async function updateWebhook(
  deps: WebhookDeps,
  actor: Actor,
  webhookId: string,
  patch: { url?: string; events?: string[]; description?: string | null; status?: 'active' | 'paused' },
): Promise<WebhookView> {
  const events = patch.events ? checkEvents(patch.events) : undefined;
  const url = patch.url !== undefined ? await checkUrl(deps.guard, patch.url) : undefined;
  return deps.db.transaction().execute(async (trx) => {
    await findEndpoint(trx, actor, webhookId, true);
    const row = await trx
      .updateTable('webhook_endpoints')
      .set({
        ...(url !== undefined ? storedUrl(deps.secretBox, url) : {}),
        ...(events !== undefined ? { events } : {}),
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        ...(patch.status !== undefined ? { status: patch.status, disabled_reason: null } : {}),
        ...(patch.status === 'active' ? { failing_since: null } : {}),
        updated_at: new Date(deps.clock()),
      })
      .where('webhook_id', '=', webhookId)
      .returning(ENDPOINT_COLUMNS)
      .executeTakeFirstOrThrow();
    await recordAudit(trx, actor, {
      action: 'webhook.updated',
      targetType: 'webhook',
      targetId: webhookId,
      details: { changes: patch.url === undefined ? patch : { ...patch, url: maskedWebhookUrl(patch.url) } },
    });
    return webhookView(row, deps.clock());
  });
}

export async function deleteWebhook(deps: WebhookDeps, actor: Actor, webhookId: string): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    await findEndpoint(trx, actor, webhookId, true);
    await trx.deleteFrom('webhook_endpoints').where('webhook_id', '=', webhookId).execute();
    await recordAudit(trx, actor, { action: 'webhook.deleted', targetType: 'webhook', targetId: webhookId });
  });
}

export async function rotateWebhookSecret(
  deps: WebhookDeps,
  actor: Actor,
  webhookId: string,
): Promise<WebhookView & { secret: string }> {
  const secret = generateWebhookSecret();
  return deps.db.transaction().execute(async (trx) => {
    await findEndpoint(trx, actor, webhookId, true);
    const now = deps.clock();
    const row = await trx
      .updateTable('webhook_endpoints')
      .set({
        secret_sealed: deps.secretBox.seal(secret),
        // SET reads the row as it was, so this keeps the secret being replaced.
        previous_secret_sealed: sql<string>`secret_sealed`,
        previous_secret_expires_at: new Date(now + ROTATION_OVERLAP_MS),
        updated_at: new Date(now),
      })
      .where('webhook_id', '=', webhookId)
      .returning(ENDPOINT_COLUMNS)
      .executeTakeFirstOrThrow();
    await recordAudit(trx, actor, {
      action: 'webhook.secret_rotated',
      targetType: 'webhook',
      targetId: webhookId,
    });
    return { ...webhookView(row, now), secret };
  });
}

export type DeliveryView = {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  last_attempt_at: string | null;
  response_status: number | null;
  latency_ms: number | null;
  response_excerpt: string | null;
  error: string | null;
  next_attempt_at: string | null;
  created_at: string;
};

export async function listDeliveries(
  deps: WebhookDeps,
  actor: Actor,
  webhookId: string,
  query: { limit?: number; cursor?: string; status?: 'pending' | 'succeeded' | 'failed' | undefined },
): Promise<{ deliveries: DeliveryView[]; next_cursor: string | null }> {
  await findEndpoint(deps.db, actor, webhookId);
  const page = pageOf(query);
  let select = deps.db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .select(timeKey('created_at').as('cursor_time'))
    .where('webhook_id', '=', webhookId);
  if (query.status) select = select.where('status', '=', query.status);
  if (page.after) select = select.where(afterKey('created_at', 'delivery_id', page.after, 'desc'));
  const rows = await select
    .orderBy('created_at', 'desc')
    .orderBy('delivery_id', 'desc')
    .limit(page.limit + 1)
    .execute();
  const { items, nextCursor } = finishPage(rows, page.limit, (row) => row.delivery_id);
  return { deliveries: items.map(deliveryView), next_cursor: nextCursor };
}

export function deliveryView(row: {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_latency_ms: number | null;
  last_response_excerpt: string | null;
  last_error: string | null;
  next_attempt_at: Date | null;
  created_at: Date;
}): DeliveryView {
  return {
    delivery_id: row.delivery_id,
    webhook_id: row.webhook_id,
    event_id: row.event_id,
    event_type: row.event_type,
    status: row.status,
    attempts: row.attempts,
    last_attempt_at: row.last_attempt_at?.toISOString() ?? null,
    response_status: row.last_status_code,
    latency_ms: row.last_latency_ms,
    response_excerpt: row.last_response_excerpt,
    error: row.last_error,
    next_attempt_at: row.status === 'pending' ? (row.next_attempt_at?.toISOString() ?? null) : null,
    created_at: row.created_at.toISOString(),
  };
}

/** Sends a delivery again now, whatever became of it; its webhook-id stays the same. */
export async function retryDelivery(
  deps: WebhookDeps,
  actor: Actor,
  webhookId: string,
  deliveryId: string,
): Promise<DeliveryView> {
  return deps.db.transaction().execute(async (trx) => {
    await findEndpoint(trx, actor, webhookId);
    const row = await trx
      .updateTable('webhook_deliveries')
      .set({
        status: 'pending',
        next_attempt_at: new Date(deps.clock()),
        lease_until: null,
        updated_at: new Date(deps.clock()),
      })
      .where('delivery_id', '=', deliveryId)
      .where('webhook_id', '=', webhookId)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new SchedError(ErrorCode.DELIVERY_NOT_FOUND, `no delivery ${deliveryId}`);
    await recordAudit(trx, actor, {
      action: 'webhook.delivery_retried',
      targetType: 'webhook_delivery',
      targetId: deliveryId,
    });
    return deliveryView(row);
  });
}

import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createDependencies } from '../../src/dependencies.js';
import { sealPlaintextWebhookUrls } from '../../src/services/webhooks.js';
import { describeOnBackends } from '../support/backends.js';
import { createOpenResource } from '../support/resources.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

const EVENTS = ['booking.created'];

describeOnBackends('webhook URLs with a login', (t) => {
  it('refuses a URL with a user name and password at create, naming url and echoing neither', async () => {
    const response = await t().request('POST', '/webhooks', {
      body: { url: 'http://hook-user:hook-pass-31@127.0.0.1:9/in', events: EVENTS },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([expect.objectContaining({ field: 'url' })]);
    expect(response.body).not.toContain('hook-pass-31');
    const stored = await t().database.db.selectFrom('webhook_endpoints').select('url').execute();
    expect(JSON.stringify(stored)).not.toContain('hook-pass-31');
  });

  it('refuses one at PATCH and keeps the URL it had', async () => {
    const created = await t().request('POST', '/webhooks', {
      body: { url: 'http://127.0.0.1:9/plain', events: EVENTS },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().webhook_id as string;
    const patched = await t().request('PATCH', `/webhooks/${id}`, {
      body: { url: 'http://only-user@127.0.0.1:9/plain' },
    });
    expect(patched.statusCode).toBe(400);
    expect(patched.json().errors).toEqual([expect.objectContaining({ field: 'url' })]);
    expect(patched.body).not.toContain('only-user');
    expect((await t().request('GET', `/webhooks/${id}`)).json().url).toBe('http://127.0.0.1:9/plain');
  });
});

describeOnBackends('webhook URLs with a token in the query', (t) => {
  it('delivers to the URL as given but shows the token masked in views and the audit log', async () => {
    const url = 'http://127.0.0.1:9/in?team=ops&token=query-token-55';
    const created = await t().request('POST', '/webhooks', { body: { url, events: EVENTS } });
    expect(created.statusCode).toBe(201);
    expect(created.json().url).toBe('http://127.0.0.1:9/in?team=***&token=***');
    const id = created.json().webhook_id as string;
    expect((await t().request('GET', `/webhooks/${id}`)).json().url).toBe(created.json().url);
    const listed = await t().request('GET', '/webhooks');
    expect(listed.body).toContain(id);
    expect(listed.body).not.toContain('query-token-55');
    const audit = await t().request('GET', '/audit-log');
    expect(audit.statusCode).toBe(200);
    expect(audit.body).toContain(id);
    expect(audit.body).not.toContain('query-token-55');
    const stored = await t()
      .database.db.selectFrom('webhook_endpoints')
      .select(['url', 'url_sealed'])
      .where('webhook_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(stored.url).toBe('http://127.0.0.1:9/in?team=***&token=***');
    expect(stored.url_sealed).not.toContain('query-token-55');
    expect(t().secretBox.open(stored.url_sealed!)).toBe(url);
  });
});

describeOnBackends('webhook URLs sealed at rest', (t) => {
  let receiver: WebhookReceiver;
  let resourceId: string;
  let slot = 0;
  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    resourceId = await createOpenResource(t(), { name: 'Sealed URLs', kind: 'room', time_zone: 'UTC' });
  });
  afterAll(() => receiver?.stop());

  /** A subscription to EVENTS at `url`; returns its id. */
  async function subscribe(url: string): Promise<string> {
    const created = await t().request('POST', '/webhooks', { body: { url, events: EVENTS } });
    expect(created.statusCode, created.body).toBe(201);
    return created.json().webhook_id as string;
  }

  const storedRow = (id: string) =>
    t()
      .database.db.selectFrom('webhook_endpoints')
      .select(['url', 'url_sealed'])
      .where('webhook_id', '=', id)
      .executeTakeFirstOrThrow();

  /** A booking, so every subscription gets a delivery; returns what the receiver got from one round. */
  async function deliverOnce() {
    const start = new Date(t().clock.now + 3_600_000 * (1 + slot++));
    const booked = await t().request('POST', '/bookings', {
      body: {
        resource_ids: [resourceId],
        start_time: start.toISOString(),
        end_time: new Date(start.getTime() + 1_800_000).toISOString(),
        title: 'Sealed',
      },
    });
    expect(booked.statusCode, booked.body).toBe(201);
    const before = receiver.received.length;
    const dispatcher = t().dispatcher({ timeoutMs: 2_000 });
    try {
      await dispatcher.runOnce();
    } finally {
      await dispatcher.stop();
    }
    return receiver.received.slice(before).map((request) => request.path);
  }

  it('delivers to the URL with its token; GET shows it masked, and neither the row nor the audit log holds the token', async () => {
    const id = await subscribe(receiver.url('/in?token=sealed-token-71'));
    expect((await t().request('GET', `/webhooks/${id}`)).json().url).toBe(receiver.url('/in?token=***'));
    const patched = await t().request('PATCH', `/webhooks/${id}`, {
      body: { url: receiver.url('/in?token=patched-token-72') },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().url).toBe(receiver.url('/in?token=***'));

    const row = await storedRow(id);
    expect(JSON.stringify(row)).not.toMatch(/sealed-token-71|patched-token-72/);
    expect(row.url).toBe(receiver.url('/in?token=***'));
    const audit = await t().database.db.selectFrom('audit_log').select('details').execute();
    expect(JSON.stringify(audit)).not.toMatch(/sealed-token-71|patched-token-72/);
    const events = await t().database.db.selectFrom('webhook_events').select('payload').execute();
    expect(JSON.stringify(events)).not.toMatch(/sealed-token-71|patched-token-72/);

    expect(await deliverOnce()).toContain('/in?token=patched-token-72');
    await t().request('DELETE', `/webhooks/${id}`);
  });

  it('seals a URL stored in the clear before sealing at the next start, and delivers to it meanwhile', async () => {
    const id = await subscribe(receiver.url('/old'));
    // The row as the server before sealing left it.
    await t()
      .database.db.updateTable('webhook_endpoints')
      .set({ url: receiver.url('/old?token=legacy-token-73'), url_sealed: null })
      .where('webhook_id', '=', id)
      .execute();
    expect(await deliverOnce()).toContain('/old?token=legacy-token-73');

    const restarted = await createDependencies(loadConfig({ LOG_LEVEL: 'silent' }), {
      database: t().database,
      secretBox: t().secretBox,
      processMetrics: false,
    });
    await restarted.close();
    const row = await storedRow(id);
    expect(row.url).toBe(receiver.url('/old?token=***'));
    expect(row.url_sealed).not.toContain('legacy-token-73');
    expect(t().secretBox.open(row.url_sealed!)).toBe(receiver.url('/old?token=legacy-token-73'));
    // A second start finds nothing left to seal and changes nothing.
    expect(await sealPlaintextWebhookUrls(t().database.db, t().secretBox)).toBe(0);
    expect(await storedRow(id)).toEqual(row);
    expect(await deliverOnce()).toContain('/old?token=legacy-token-73');
    await t().request('DELETE', `/webhooks/${id}`);
  });

  it('a URL changed by a process that does not seal URLs yet (during an upgrade) is the one delivered to', async () => {
    const id = await subscribe(receiver.url('/before?token=before-token-75'));
    // An earlier version's PATCH: it writes url and knows nothing of url_sealed.
    await t()
      .database.db.updateTable('webhook_endpoints')
      .set({ url: receiver.url('/after?token=after-token-76') })
      .where('webhook_id', '=', id)
      .execute();
    expect(await deliverOnce()).toContain('/after?token=after-token-76');
    await t().request('DELETE', `/webhooks/${id}`);
  });

  it('a delivery the guard refuses records the host and the reason, not the URL with its token', async () => {
    const id = await subscribe(receiver.url('/refused?token=refused-token-74'));
    // Sealed as a URL the guard refuses (outside SCHED_OUTBOUND_ALLOW), as if it had been let in earlier.
    await t()
      .database.db.updateTable('webhook_endpoints')
      .set({
        url: 'http://10.1.2.3/refused?token=***',
        url_sealed: t().secretBox.seal('http://10.1.2.3/refused?token=refused-token-74'),
      })
      .where('webhook_id', '=', id)
      .execute();
    await deliverOnce();
    const deliveries = await t().request('GET', `/webhooks/${id}/deliveries`);
    const [delivery] = deliveries.json().deliveries;
    expect(delivery.error).toMatch(/^refused to connect to 10\.1\.2\.3: /);
    expect(deliveries.body).not.toContain('refused-token-74');
    await t().request('DELETE', `/webhooks/${id}`);
  });
});

import { expect, it } from 'vitest';
import { describeOnBackends } from '../support/backends.js';

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

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

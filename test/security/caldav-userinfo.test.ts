import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { calDavServerSkipReason, startCalDavServer, type CalDavServer } from '../support/caldav-servers.js';
import { createOpenResource } from '../support/resources.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { withUserinfo } from './userinfo.js';

const pglite = backends.find((backend) => backend.name === 'pglite');
if (!pglite) throw new Error('no PGlite backend');

const skip = calDavServerSkipReason('radicale');
describe.skipIf(skip)(`CalDAV URLs with a user name and password${skip ? ` — SKIPPED: ${skip}` : ''}`, () => {
  let server: CalDavServer;
  let t: TestApp;
  let counter = 0;

  beforeAll(async () => {
    server = await startCalDavServer('radicale');
    t = await startTestApp(pglite);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await server?.stop();
  });

  async function connect(body: Record<string, unknown>) {
    counter++;
    const resourceId = await createOpenResource(t, { name: `R ${counter}`, kind: 'room', time_zone: 'UTC' });
    return t.request('POST', '/calendars/caldav/connect', { body: { resource_id: resourceId, ...body } });
  }

  const encodedPassword = () => encodeURIComponent(server.password);

  it('takes the login out of the URL and keeps it only in the sealed credentials', async () => {
    const url = withUserinfo(await server.newCalendar('userinfo-1'), server.username, server.password);
    const response = await connect({ url });
    expect(response.statusCode).toBe(201);
    expect(response.body).not.toContain(encodedPassword());
    expect(response.body).not.toContain(`${server.username}:`);
    const connectionId = response.json().connection_id as string;

    const row = await t.database.db
      .selectFrom('calendar_connections')
      .select(['calendar_id', 'settings', 'credentials_sealed'])
      .where('connection_id', '=', connectionId)
      .executeTakeFirstOrThrow();
    expect(new URL(row.calendar_id).username).toBe('');
    const settings = JSON.stringify(row.settings);
    expect(settings).not.toContain(encodedPassword());
    expect(settings).not.toContain(server.password);
    expect(t.secretBox.openJson(row.credentials_sealed ?? '')).toEqual({
      username: server.username,
      password: server.password,
    });

    const audit = await t.database.db.selectFrom('audit_log').selectAll().execute();
    const auditText = JSON.stringify(audit);
    expect(auditText).toContain(connectionId);
    expect(auditText).not.toContain(encodedPassword());
    expect(auditText).not.toContain(server.password);

    const sync = await t.request('POST', `/calendars/caldav/${connectionId}/sync`);
    expect(sync.statusCode).toBeLessThan(300);
    const after = await t.request('GET', '/calendars', {
      query: { resource_id: response.json().resource_id },
    });
    expect(after.json().calendars[0]).toMatchObject({ connection_id: connectionId, status: 'active' });
  });

  it('accepts the login both in the URL and in the fields when they agree', async () => {
    const calendar = await server.newCalendar('userinfo-2');
    const response = await connect({
      url: withUserinfo(calendar, server.username, server.password),
      username: server.username,
      password: server.password,
    });
    expect(response.statusCode).toBe(201);
    expect(response.json().calendar_id).toBe(calendar);
  });

  it('refuses a URL whose login differs from the fields, naming url and echoing neither', async () => {
    const calendar = await server.newCalendar('userinfo-3');
    const response = await connect({
      url: withUserinfo(calendar, server.username, 'url-secret-pw'),
      username: server.username,
      password: server.password,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([expect.objectContaining({ field: 'url' })]);
    expect(response.body).not.toContain('url-secret-pw');
    expect(response.body).not.toContain(encodedPassword());
  });

  it('keeps the login out of the error when the server refuses it', async () => {
    const response = await connect({ url: withUserinfo(server.calendarUrl, server.username, 'wrong-pw-77') });
    expect(response.json()).toMatchObject({ status: 502, code: 'PROVIDER_AUTH_FAILED' });
    expect(response.body).not.toContain('wrong-pw-77');
  });
});

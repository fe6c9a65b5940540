import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

for (const backend of backends) {
  describe.skipIf(backend.skipReason)(
    `smoke on ${backend.name}${backend.skipReason ? ` — SKIPPED: ${backend.skipReason}` : ''}`,
    () => {
      let t: TestApp;
      beforeAll(async () => {
        t = await startTestApp(backend);
      });
      afterAll(async () => t?.close());

      it('creates and reads a resource', async () => {
        const created = await t.request('POST', '/resources', {
          body: { name: 'Ada', kind: 'person', time_zone: 'Europe/Berlin' },
        });
        expect(created.statusCode).toBe(201);
        const got = await t.request('GET', `/resources/${created.json().resource_id}`);
        expect(got.json().name).toBe('Ada');
      });
    },
  );
}

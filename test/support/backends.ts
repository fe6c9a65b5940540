import fs from 'node:fs';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/storage/open-database.js';
import { databaseUrl, withAdminClient } from './postgres.js';
import { startTestApp, type TestApp } from './test-app.js';

export type Backend = {
  name: 'pglite' | 'postgres';
  /** Why this backend does not run here; undefined when it does. */
  skipReason: string | undefined;
  /** A fresh, migrated database of its own, dropped again by close(). */
  open(): Promise<DatabaseHandle>;
};

let cloneCounter = 0;

const pglite: Backend = {
  name: 'pglite',
  skipReason: undefined,
  async open() {
    const tar = fs.readFileSync(inject('pgliteTemplatePath'));
    return openDatabase({ kind: 'embedded-memory', loadDataDir: new Blob([tar]) });
  },
};

const postgres: Backend = {
  name: 'postgres',
  skipReason: inject('postgresSkipReason') ?? undefined,
  async open() {
    const template = inject('postgresTemplate');
    if (!template) throw new Error('PostgreSQL is not available in this run');
    const name = `${template}_c${process.pid}_${cloneCounter++}`;
    await withAdminClient((client) => client.query(`create database "${name}" template "${template}"`));
    const handle = await openDatabase({ kind: 'postgres', url: databaseUrl(name), poolSize: 5 });
    return {
      ...handle,
      close: async () => {
        await handle.close();
        await withAdminClient((client) => client.query(`drop database if exists "${name}" with (force)`));
      },
    };
  },
};

/** The same suites run on both; describe titles carry the skip reason where one is skipped. */
export const backends: Backend[] = [pglite, postgres];

/**
 * Declares the suite once per backend, each with its own app and database for the whole file.
 * `t()` is the running app; a skipped backend says why in its title.
 */
export function describeOnBackends(title: string, body: (t: () => TestApp) => void, now?: string): void {
  for (const backend of backends) {
    const suffix = backend.skipReason ? ` — SKIPPED: ${backend.skipReason}` : '';
    describe.skipIf(backend.skipReason)(`${title} on ${backend.name}${suffix}`, () => {
      let app: TestApp | undefined;
      beforeAll(async () => {
        app = await startTestApp(backend, now);
      });
      afterAll(async () => app?.close());
      body(() => {
        if (!app) throw new Error('the test app did not start');
        return app;
      });
    });
  }
}

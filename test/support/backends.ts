import fs from 'node:fs';
import { inject } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/storage/open-database.js';
import { databaseUrl, withAdminClient } from './postgres.js';

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

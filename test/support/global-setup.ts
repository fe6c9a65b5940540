import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { createPGlite, openDatabase } from '../../src/storage/open-database.js';
import type { Kysely } from 'kysely';
import { databaseUrl, postgresUnavailableReason, uniqueDatabaseName, withAdminClient } from './postgres.js';
import { buildDist } from './build-dist.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplatePath: string;
    postgresTemplate: string | null;
    postgresSkipReason: string | null;
  }
}

/**
 * One migrated database of each kind per run; every test file starts from a copy. A fresh PGlite costs
 * seconds (initdb), loading a dumped one about one, and CREATE DATABASE ... TEMPLATE is cheaper still.
 */
export default async function setup(project: TestProject) {
  // dist/ is built once per run, beside the templates, for the tests that start the built process
  // (entry: 'built'); files building it at the same time would read each other's half-written output.
  const built = buildDist();
  built.catch(() => undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sched-test-'));
  const pglite = await createPGlite();
  const { PGliteDialect } = await import('../../src/storage/pglite-dialect.js');
  const { Kysely: KyselyClass } = await import('kysely');
  const db = new KyselyClass<unknown>({ dialect: new PGliteDialect(pglite) });
  await migrateToLatest(db);
  const dump = await pglite.dumpDataDir('none');
  const pglitePath = path.join(dir, 'template.tar');
  fs.writeFileSync(pglitePath, Buffer.from(await dump.arrayBuffer()));
  await db.destroy();
  project.provide('pgliteTemplatePath', pglitePath);

  const reason = await postgresUnavailableReason();
  let template: string | null = null;
  if (reason) {
    if (process.env.CI === 'true')
      throw new Error(`CI=true forbids skipping the PostgreSQL suites: ${reason}`);
    process.stderr.write(
      `\n*** SKIPPED: every PostgreSQL suite, because ${reason}.\n*** The same suites ran on PGlite.\n\n`,
    );
  } else {
    template = uniqueDatabaseName('sched_tmpl');
    await withAdminClient((client) => client.query(`create database ${template}`));
    const handle = await openDatabase({ kind: 'postgres', url: databaseUrl(template), poolSize: 1 });
    await migrateToLatest(handle.db as unknown as Kysely<unknown>);
    await handle.close();
  }
  project.provide('postgresTemplate', template);
  project.provide('postgresSkipReason', reason ?? null);
  await built;

  return async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    if (template) {
      const name = template;
      await withAdminClient(async (client) => {
        // Clones left by a crashed test file go too; each is named after this run's template.
        const { rows } = await client.query<{ datname: string }>(
          `select datname from pg_database where datname = $1 or datname like $2`,
          [name, `${name}_c%`],
        );
        for (const row of rows) await client.query(`drop database if exists "${row.datname}" with (force)`);
      });
    }
  };
}

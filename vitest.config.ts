import { defineConfig } from 'vitest/config';

const UNIT = 'test/unit/**/*.test.ts';

/**
 * Two projects, both run by `vitest run`: `unit` holds the pure tests (no database, no server, no
 * global setup), so `vitest --project unit` answers in seconds; `integration` holds everything else and
 * is the only one that prepares the database templates.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [UNIT],
          // Pure modules: one thread pool without per-file isolation starts in a fraction of the time.
          pool: 'threads',
          isolate: false,
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [UNIT],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 120_000,
          pool: 'forks',
        },
      },
    ],
  },
});

import { defineConfig } from 'vitest/config';

// Test databases carry the run's id, so two runs on one server never drop each other's databases.
process.env.POSTBOX_TEST_RUN_ID ??= String(process.pid);

export default defineConfig({
  resolve: { conditions: ['postbox-source'] },
  ssr: { resolve: { conditions: ['postbox-source'] } },
  test: {
    globalSetup: ['packages/postbox/test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // The chaos scenarios kill processes and restart the PostgreSQL server: they run alone, after the rest.
        extends: true,
        test: {
          name: 'chaos',
          include: ['chaos/test/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});

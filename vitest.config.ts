import { defineConfig } from 'vitest/config';

// Test databases carry the run's id, so two runs on one server never drop each other's databases.
process.env.POSTBOX_TEST_RUN_ID ??= String(process.pid);

export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts'],
    globalSetup: ['packages/postbox/test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});

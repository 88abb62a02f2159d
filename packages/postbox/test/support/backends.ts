import { Postbox, type PostboxOptions } from '../../src/postbox.js';
import { pgliteDatabase } from '../../src/sql/pglite-database.js';
import { createTestDatabase } from './postgres.js';

export interface Backend {
  name: 'postgres' | 'pglite';
  /** A migrated, empty Postbox of its own; closed (and its database dropped) by the returned cleanup. */
  open(options?: Omit<PostboxOptions, 'database' | 'databaseUrl' | 'dataDir'>): Promise<TestPostbox>;
}

export interface TestPostbox {
  postbox: Postbox;
  url: string | undefined;
  cleanup(): Promise<void>;
}

export const postgresBackend: Backend = {
  name: 'postgres',
  async open(options = {}) {
    const database = await createTestDatabase();
    const postbox = await Postbox.create({ ...options, databaseUrl: database.url });
    return {
      postbox,
      url: database.url,
      async cleanup() {
        await postbox.close(2_000);
        await database.drop();
      },
    };
  },
};

export const pgliteBackend: Backend = {
  name: 'pglite',
  async open(options = {}) {
    const postbox = await Postbox.create({ ...options, database: await pgliteDatabase(), migrate: 'auto' });
    return {
      postbox,
      url: undefined,
      async cleanup() {
        await postbox.close(2_000);
        await postbox.db.close();
      },
    };
  },
};

export const backends: Backend[] = [postgresBackend, pgliteBackend];

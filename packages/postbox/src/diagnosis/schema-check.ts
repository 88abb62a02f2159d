import { isPostboxError } from '../errors/postbox-error.js';
import { latestVersion, postboxMigrations } from '../schema/migrations.js';
import { assertSchemaCurrent, schemaVersion } from '../schema/migrator.js';
import type { DoctorCheck } from './doctor-check.js';

/** The Postbox schema is migrated, and to exactly the version this library ships. */
export const schemaCheck: DoctorCheck = {
  check: 'schema',
  title: 'schema version',
  needsSchema: false,
  async run({ db }) {
    const latest = latestVersion(postboxMigrations);
    try {
      await assertSchemaCurrent(db);
      return { verdict: 'ok', finding: `migrated to version ${latest}, the latest this library ships` };
    } catch (error) {
      if (isPostboxError(error, 'POSTBOX_ERR_SCHEMA_NOT_MIGRATED')) {
        return { verdict: 'fail', finding: 'this database has no Postbox schema', fix: `run \`${postboxMigrations.migrateCommand}\`` };
      }
      if (isPostboxError(error, 'POSTBOX_ERR_SCHEMA_OUTDATED')) {
        return {
          verdict: 'fail',
          finding: `the schema is at version ${await schemaVersion(db)}, this library needs ${latest}`,
          fix: `run \`${postboxMigrations.migrateCommand}\``,
        };
      }
      if (isPostboxError(error, 'POSTBOX_ERR_SCHEMA_TOO_NEW')) {
        return {
          verdict: 'fail',
          finding: `the schema is at version ${await schemaVersion(db)}, newer than this library's ${latest}`,
          fix: 'upgrade the postbox package in every process that uses this database; never run older code on a newer schema',
        };
      }
      throw error;
    }
  },
};

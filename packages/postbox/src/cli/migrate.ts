import type { Command } from 'commander';
import { migrate, migrationsAsSql } from '../schema/migrator.js';
import { type ConnectionFlags, databaseUrlOption, withDatabase } from './connect.js';
import type { CliContext } from './context.js';

export function registerMigrate(program: Command, context: CliContext): void {
  program
    .command('migrate')
    .description('Apply the Postbox schema migrations the database is missing')
    .option('--print', 'write the whole schema as SQL to stdout instead, without connecting to a database')
    .addOption(databaseUrlOption())
    .action(async (options: ConnectionFlags & { print?: boolean }) => {
      if (options.print) {
        await context.out.text(migrationsAsSql());
        return;
      }
      const { result, where } = await withDatabase(options, context.env, async (db) => ({
        result: await migrate(db),
        where: db.description,
      }));
      for (const { version, name } of result.applied) {
        await context.out.line(`Applied migration ${String(version).padStart(4, '0')}_${name}`);
      }
      await context.out.line(
        result.applied.length === 0
          ? `Schema already at version ${result.version} on ${where}; nothing to apply.`
          : `Schema now at version ${result.version} on ${where}.`,
      );
    });
}

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url));
const fileName = /^(\d{4})_([a-z0-9_]+)\.sql$/;

let cached: readonly Migration[] | undefined;

/** The numbered `.sql` files shipped in the package, in order. */
export function loadMigrations(): readonly Migration[] {
  cached ??= Object.freeze(
    readdirSync(migrationsDir)
      .filter((file) => fileName.test(file))
      .sort()
      .map((file) => {
        const [, version, name] = fileName.exec(file) as RegExpExecArray;
        const sql = readFileSync(new URL(file, `file://${migrationsDir}`), 'utf8');
        return { version: Number(version), name: name as string, sql, checksum: createHash('sha256').update(sql).digest('hex') };
      }),
  );
  return cached;
}

export function latestVersion(): number {
  return loadMigrations().at(-1)?.version ?? 0;
}

import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { connect, serverUrl } from './support/database.js';

const benchmarks = [
  'consume',
  'publish',
  'wakeup',
  'pglite',
  'relay',
  'event-store',
  'kafka-subscriber',
  'todo-history',
  'partitions',
  'time',
];
const selected = process.argv.length > 2 ? process.argv.slice(2) : benchmarks;
const unknown = selected.filter((name) => !benchmarks.includes(name));
if (unknown.length > 0) {
  console.error(`Unknown benchmark ${unknown.join(', ')}; choose from ${benchmarks.join(', ')}.`);
  process.exit(2);
}

const client = await connect(serverUrl);
const { rows } = await client.query<{ server_version: string }>('show server_version');
await client.end();
console.log(
  `# Postbox benchmarks, ${new Date().toISOString()}: Node ${process.version}, ${cpus().length} cores, PostgreSQL ${rows[0]?.server_version}`,
);

for (const name of selected) {
  const started = performance.now();
  console.log(`\n## ${name}`);
  const script = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  const result = spawnSync(process.execPath, ['--import', 'tsx', script], { stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`Benchmark ${name} failed (exit ${result.status ?? result.signal}).`);
    process.exit(result.status ?? 1);
  }
  console.log(`(${name} took ${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

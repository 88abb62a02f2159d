import { Command } from 'commander';
import { scenarios, selectScenarios } from './registry.js';
import { runScenarios } from './run.js';
import { formatSummary, passed } from './summary.js';
import { serverUrl } from './support/database.js';

const program = new Command('chaos')
  .description('Runs the fault scenarios against a local PostgreSQL server and prints one summary table.')
  .option('--reduced', 'the short version that npm test runs')
  .option('--only <names...>', 'run only these scenarios')
  .option('--list', 'list the scenarios and exit')
  .parse();

const options = program.opts<{ reduced?: boolean; only?: string[]; list?: boolean }>();

if (options.list) {
  for (const scenario of scenarios) console.log(`${scenario.name}\t${scenario.summary}`);
} else {
  const started = new Date();
  const reports = await runScenarios(selectScenarios(options.only), {
    mode: options.reduced ? 'reduced' : 'full',
    server: serverUrl(),
    log: (line) => console.error(`${new Date().toISOString()} ${line}`),
  });
  console.log(`\nPostbox chaos suite, ${options.reduced ? 'reduced' : 'full'} run, started ${started.toISOString()}\n`);
  console.log(formatSummary(reports));
  process.exitCode = reports.every(passed) ? 0 : 1;
}

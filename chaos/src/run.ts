import type { ChaosMode, Scenario } from './scenario.js';
import type { ScenarioReport } from './summary.js';
import { createDatabase, dropDatabase } from './support/database.js';

export interface RunOptions {
  mode: ChaosMode;
  server: string;
  log(line: string): void;
}

function databaseName(scenario: Scenario): string {
  return `chaos_${scenario.name.replace(/[^a-z0-9]+/g, '_')}_${process.pid}`;
}

/** Runs one scenario on a database of its own; a scenario that throws is reported, not fatal to the run. */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ScenarioReport> {
  const started = performance.now();
  const name = databaseName(scenario);
  try {
    const databaseUrl = await createDatabase(options.server, name);
    const outcome = await scenario.run({
      mode: options.mode,
      databaseUrl,
      adminUrl: options.server,
      log: (line) => options.log(`[${scenario.name}] ${line}`),
    });
    return { name: scenario.name, outcome, elapsedMs: performance.now() - started };
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return { name: scenario.name, error: message, elapsedMs: performance.now() - started };
  } finally {
    await dropDatabase(options.server, name).catch(() => undefined);
  }
}

export async function runScenarios(scenarios: readonly Scenario[], options: RunOptions): Promise<ScenarioReport[]> {
  const reports: ScenarioReport[] = [];
  for (const scenario of scenarios) {
    options.log(`running ${scenario.name}: ${scenario.summary}`);
    const report = await runScenario(scenario, options);
    options.log(`${scenario.name} done in ${(report.elapsedMs / 1000).toFixed(1)} s`);
    reports.push(report);
  }
  return reports;
}

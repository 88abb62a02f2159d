import { describe, expect, it } from 'vitest';
import { scenarios } from '../src/registry.js';
import { runScenario } from '../src/run.js';
import { serverUrl } from '../src/support/database.js';

describe('chaos suite, reduced', () => {
  it('has scenarios to run', () => {
    expect(scenarios.length).toBeGreaterThan(0);
  });

  for (const scenario of scenarios) {
    it(scenario.name, async () => {
      const report = await runScenario(scenario, { mode: 'reduced', server: serverUrl(), log: () => undefined });
      expect(report.error).toBeUndefined();
      expect(report.outcome?.violations).toEqual([]);
    }, 180_000);
  }
});

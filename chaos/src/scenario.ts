/** `full` is `npm run chaos`; `reduced` is the short version that runs inside `npm test`. */
export type ChaosMode = 'full' | 'reduced';

export interface ScenarioContext {
  mode: ChaosMode;
  /** A fresh database of its own, created for this scenario and dropped after it. */
  databaseUrl: string;
  /** The server's maintenance database, for creating more databases or watching the server. */
  adminUrl: string;
  /** Progress lines, printed as they come in a full run. */
  log(line: string): void;
}

/** What one scenario did, and which invariants it saw broken. */
export interface ScenarioOutcome {
  /** Faults injected (kills, restarts, outages) or rounds run. */
  runs: number;
  sent: number;
  received: number;
  lost: number;
  duplicated: number;
  /** The longest time from a fault to the system doing useful work again, in milliseconds. */
  maxRecoveryMs: number;
  /** Each broken invariant, in words; empty when the scenario passed. */
  violations: string[];
  /** Other figures worth printing under the table (RSS, delays, allowances). */
  notes?: string[];
}

export interface Scenario {
  name: string;
  /** One line: what is done to the system and what is expected. */
  summary: string;
  run(context: ScenarioContext): Promise<ScenarioOutcome>;
}

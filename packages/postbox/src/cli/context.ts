import type { Output } from './output.js';

/** What every command gets: where to print, the environment, and the exit code to end with. */
export interface CliContext {
  out: Output;
  env: Record<string, string | undefined>;
  exitCode: number;
}

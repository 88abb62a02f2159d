import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { connectionPasswords } from '../sql/connection-secrets.js';
import { registerCommandResults } from './command-results.js';
import type { CliContext } from './context.js';
import { registerDeadLetters } from './dead-letters.js';
import { registerDoctor } from './doctor.js';
import { CliError, errorLine } from './errors.js';
import { registerGroups } from './groups.js';
import { registerMigrate } from './migrate.js';
import { type CliIo, Output } from './output.js';
import { registerParked } from './parked.js';
import { registerProjections } from './projections.js';
import { registerPublish } from './publish.js';
import { registerRecoverAfterRestore } from './recover-after-restore.js';
import { registerRetention } from './retention.js';
import { registerScheduled } from './scheduled.js';
import { registerSchedules } from './schedules.js';
import { registerSnapshots } from './snapshots.js';
import { registerStatus } from './status.js';
import { registerTail } from './tail.js';
import { registerUi } from './ui.js';

const usageExitCode = 2;

function packageVersion(): string {
  // The same relative path from src/cli and from dist/cli.
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

export function buildProgram(context: CliContext): Command {
  const { stdout, stderr } = context.out.io;
  const program = new Command('postbox')
    .description('Postbox: a PostgreSQL message log with a transactional outbox and consumer groups.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => stdout.write(text),
      writeErr: (text) => stderr.write(text),
      // runCli prints usage errors itself, in the one-line format every error uses.
      outputError: () => undefined,
    });
  registerMigrate(program, context);
  registerPublish(program, context);
  registerTail(program, context);
  registerStatus(program, context);
  registerGroups(program, context);
  registerRetention(program, context);
  registerDeadLetters(program, context);
  registerParked(program, context);
  registerScheduled(program, context);
  registerSchedules(program, context);
  registerSnapshots(program, context);
  registerCommandResults(program, context);
  registerProjections(program, context);
  registerRecoverAfterRestore(program, context);
  registerDoctor(program, context);
  registerUi(program, context);
  return program;
}

function processIo(): CliIo {
  // A closed stdout (`postbox tail | head`) surfaces through the failed write; without a listener it would crash the process.
  process.stdout.on('error', () => undefined);
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

async function usageError(error: CommanderError, output: Output, secrets: readonly string[]): Promise<number> {
  if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
  if (error.code === 'commander.help') {
    if (error.exitCode === 0) return 0;
    await output.error(errorLine(new CliError('POSTBOX_ERR_USAGE', 'A command is required; see the list above.')));
    return usageExitCode;
  }
  await output.error(errorLine(new CliError('POSTBOX_ERR_USAGE', `${error.message.replace(/^error: /, '')} (see --help)`), secrets));
  return usageExitCode;
}

/** Passwords of every connection URL the command line or the environment holds, so that no message repeats one. */
function connectionSecrets(args: readonly string[], env: Record<string, string | undefined>): string[] {
  const candidates = [env.DATABASE_URL, env.TIMESCALE_URI, ...args.map((arg) => arg.replace(/^--[a-z-]+=/, ''))];
  return candidates.flatMap((candidate) => connectionPasswords(candidate));
}

/** Runs the command line on user arguments (no node or script path) and resolves to the exit code. */
export async function runCli(args: readonly string[], io: CliIo = processIo()): Promise<number> {
  const context: CliContext = { out: new Output(io), env: io.env, exitCode: 0 };
  const secrets = connectionSecrets(args, io.env);
  try {
    await buildProgram(context).parseAsync([...args], { from: 'user' });
    return context.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return usageError(error, context.out, secrets);
    await context.out.error(errorLine(error, secrets)).catch(() => undefined);
    return 1;
  }
}

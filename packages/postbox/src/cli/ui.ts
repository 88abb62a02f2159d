import { type Command, InvalidArgumentError, Option } from 'commander';
import { defaults } from '../config/defaults.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';

interface UiFlags extends ConnectionFlags {
  host: string;
  port: number;
  token?: string;
  readOnly?: boolean;
}

const tokenVariable = 'POSTBOX_OPS_TOKEN';

function port(text: string): number {
  const value = Number(text);
  if (!/^\d{1,5}$/.test(text.trim()) || value > 65_535)
    throw new InvalidArgumentError('Expected a port from 0 to 65535 (0 picks a free one).');
  return value;
}

/** Resolves on the first SIGINT or SIGTERM. */
function interrupted(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export function registerUi(program: Command, context: CliContext): void {
  program
    .command('ui')
    .description(
      'Serve the operations console for the database: consumer groups and partitions, dead letters, projections, ' +
        'the transactions holding readers back, and lag and throughput charts. Runs until Ctrl-C or SIGTERM.',
    )
    .addOption(databaseUrlOption())
    .addOption(
      new Option('--host <host>', 'address to listen on; beyond loopback the console needs a token').default(defaults.opsConsole.host),
    )
    .addOption(new Option('--port <port>', 'port to listen on; 0 picks a free one').argParser(port).default(defaults.opsConsole.port))
    .option(
      '--token <token>',
      `bearer token for retry, discard, reset and rebuild (Authorization: Bearer <token>); defaults to $${tokenVariable}, which keeps it out of the process list`,
    )
    .option('--read-only', 'show everything and change nothing: every route that changes state answers 403')
    .action(async (flags: UiFlags) => {
      const token = flags.token ?? (context.env[tokenVariable]?.trim() || undefined);
      // Loaded here, so that no other command needs fastify, an optional peer of postbox.
      const { startConsoleServer } = await import('../ops/console/console-server.js');
      const { checkGuardSettings } = await import('../ops/console/console-guard.js');
      const readOnly = flags.readOnly === true;
      const guard = { token, host: flags.host, readOnly, tokenName: tokenVariable };
      // Refused before the database is opened: a console that would listen unguarded never starts.
      checkGuardSettings(guard);
      await withPostbox(flags, context.env, async (postbox) => {
        const signal = interrupted();
        const server = await startConsoleServer({ postbox, token, readOnly, host: flags.host, port: flags.port, tokenName: tokenVariable });
        try {
          await context.out.line(`Postbox console: ${server.url}`);
          await context.out.notice(`serving ${postbox.db.description}${token ? '; changes need the token' : ''}. Ctrl-C stops it.`);
          await context.out.notice(`stopping on ${await signal}.`);
        } finally {
          await server.close();
        }
      });
    });
}

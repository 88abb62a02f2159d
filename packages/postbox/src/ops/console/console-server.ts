import { defaults } from '../../config/defaults.js';
import { Fastify } from '../fastify.js';
import { type ConsoleOptions, registerConsole } from './register-console.js';

export interface ConsoleServerOptions extends Omit<ConsoleOptions, 'host' | 'prefix'> {
  /** defaults.opsConsole.host (loopback) unless given; another host needs a token or readOnly. */
  host?: string;
  /** defaults.opsConsole.port unless given; 0 picks a free port. */
  port?: number;
}

export interface ConsoleServer {
  /** Where the page is, ending in a slash. */
  url: string;
  close(): Promise<void>;
}

// A path parameter holds a name of up to maxNameLength characters, each up to 4 UTF-8 bytes percent-encoded.
const maxParamLength = defaults.maxNameLength * 12;

/** The console on a server of its own, at the root: what `postbox ui` runs. */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const host = options.host ?? defaults.opsConsole.host;
  const app = Fastify({ logger: false, routerOptions: { maxParamLength } });
  try {
    await registerConsole(app, { ...options, host, prefix: '' });
    const address = await app.listen({ host, port: options.port ?? defaults.opsConsole.port });
    return { url: `${address}/`, close: () => app.close() };
  } catch (error) {
    await app.close();
    throw error;
  }
}

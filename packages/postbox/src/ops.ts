/**
 * postbox/ops: health and metrics over HTTP, and the operations console, on a Fastify instance of
 * the application's or a server of their own. Needs fastify.
 */

export type { RelayStatsSource } from './ops/console/console-context.js';
export { ConsoleError } from './ops/console/console-errors.js';
export { type ConsoleServer, type ConsoleServerOptions, startConsoleServer } from './ops/console/console-server.js';
export { isLoopbackHost } from './ops/console/loopback.js';
export { type ConsoleHost, type ConsoleOptions, registerConsole } from './ops/console/register-console.js';
export type { GroupSample, SamplerSettings, ThroughputSample } from './ops/console/throughput-sampler.js';
export { type OpsServerOptions, opsServerFromEnv, registerOpsRoutes, startOpsServer } from './ops/ops-server.js';

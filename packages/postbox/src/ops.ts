/** postbox/ops: health and metrics over HTTP, on a Fastify instance of the application's or a server of its own. Needs fastify. */
export { type OpsServerOptions, opsServerFromEnv, registerOpsRoutes, startOpsServer } from './ops/ops-server.js';

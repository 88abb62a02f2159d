import { subscribe } from 'node:diagnostics_channel';
import { context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import type { FastifyInstance } from 'fastify';

/**
 * Gives each HTTP server span the Fastify route it matched, as `http.route`, so that it is named
 * `POST /api/groups/:groupId/tasks` rather than `POST`. The HTTP instrumentation reads the route
 * from the request's RPC metadata when the response ends; every Fastify instance created from now
 * on sets it in an onRequest hook (Fastify announces new instances on `fastify.initialization`).
 */
export function nameHttpSpansByRoute(): void {
  subscribe('fastify.initialization', (message) => {
    const { fastify } = message as { fastify: FastifyInstance };
    fastify.addHook('onRequest', async (request) => {
      const metadata = getRPCMetadata(context.active());
      const route = request.routeOptions.url;
      if (metadata?.type === RPCType.HTTP && route !== undefined) metadata.route = route;
    });
  });
}

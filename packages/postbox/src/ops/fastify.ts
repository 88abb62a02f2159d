import { loadOptionalPeer } from '../peers/optional-peer.js';

/** Fastify, loaded once when `postbox/ops` is imported (see loadOptionalPeer). */
export const { default: Fastify } = await loadOptionalPeer('fastify', 'postbox/ops', () => import('fastify'));

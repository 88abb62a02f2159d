import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ConsoleAsset } from '../console-assets.js';

// The page loads only its own files and talks only to its own API.
const contentSecurityPolicy =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function send(request: FastifyRequest, reply: FastifyReply, asset: ConsoleAsset): FastifyReply {
  void reply
    .header('content-type', asset.contentType)
    .header('etag', asset.etag)
    // Revalidated on every load, so that a new version of the package is picked up at once.
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', contentSecurityPolicy)
    .header('referrer-policy', 'no-referrer');
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  return reply.send(asset.body);
}

/**
 * The page at `<prefix>/` and its files at `<prefix>/assets/...`; `<prefix>` without the slash
 * redirects, so that the page's relative links resolve under the prefix.
 */
export function pageRoutes(app: FastifyInstance, assets: ReadonlyMap<string, ConsoleAsset>, prefix: string): void {
  const index = assets.get('index.html') as ConsoleAsset;
  app.route({ method: 'GET', url: '/', prefixTrailingSlash: 'slash', handler: (request, reply) => send(request, reply, index) });
  if (prefix !== '') {
    app.route({ method: 'GET', url: '/', prefixTrailingSlash: 'no-slash', handler: (_request, reply) => reply.redirect(`${prefix}/`) });
  }
  app.get('/assets/*', (request, reply) => {
    const name = (request.params as { '*': string })['*'];
    const asset = name === 'index.html' ? undefined : assets.get(name);
    if (!asset) {
      return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('Not found');
    }
    return send(request, reply, asset);
  });
}

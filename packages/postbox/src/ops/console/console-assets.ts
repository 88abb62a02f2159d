import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PostboxError } from '../../errors/postbox-error.js';

/** The page's files, shipped in the package's console/ folder: the same relative path from src/ops/console and dist/ops/console. */
export const consoleAssetsDir = fileURLToPath(new URL('../../../console/', import.meta.url));

export interface ConsoleAsset {
  body: Buffer;
  contentType: string;
  etag: string;
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The page's files by their path under console/ (`index.html`, `js/main.js`...), read once. Only
 * these are ever served: a request names a key of this map, never a path on disk.
 */
export async function loadConsoleAssets(dir: string = consoleAssetsDir): Promise<Map<string, ConsoleAsset>> {
  let names: string[];
  try {
    names = await readdir(dir, { recursive: true, encoding: 'utf8' });
  } catch (error) {
    throw new PostboxError(
      'POSTBOX_ERR_UNEXPECTED',
      `The console's page is missing from the package (${dir}); reinstall postbox.`,
      {},
      { cause: error },
    );
  }
  const assets = new Map<string, ConsoleAsset>();
  for (const name of names.sort()) {
    const contentType = contentTypes[extname(name)];
    if (!contentType) continue;
    const body = await readFile(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name.split(sep).join('/'), { body, contentType, etag });
  }
  if (!assets.has('index.html')) {
    throw new PostboxError('POSTBOX_ERR_UNEXPECTED', `The console's page has no index.html in ${dir}; reinstall postbox.`);
  }
  return assets;
}

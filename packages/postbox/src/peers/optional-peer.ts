import { PostboxError } from '../errors/postbox-error.js';

/**
 * Loads a package that only an optional part of Postbox needs (kafkajs for `postbox/kafka`, fastify
 * for `postbox/ops`). Such packages are optional peer dependencies: a user who never imports that
 * part never installs them, and one who does gets this error, naming the install command, instead
 * of a bare "Cannot find package".
 */
export async function loadOptionalPeer<T>(name: string, feature: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (!isMissing(error, name)) throw error;
    throw new PostboxError(
      'POSTBOX_ERR_MISSING_PEER',
      `${feature} needs the package ${name}, which is not installed. Install it beside postbox: npm install ${name}`,
      { package: name, feature },
      { cause: error },
    );
  }
}

function isMissing(error: unknown, name: string): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String(message).includes(`'${name}'`);
}

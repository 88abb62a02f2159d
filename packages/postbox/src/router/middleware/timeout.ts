import { HandlerError } from '../../errors/postbox-error.js';
import type { Middleware } from '../handler.js';

/**
 * Fails an attempt that runs longer than timeoutMs and aborts its signal. A handler cannot be
 * killed, so handlers with side effects should honour `context.signal`.
 */
export function timeout(timeoutMs: number): Middleware {
  return (next) => async (message, context) => {
    const controller = new AbortController();
    const onParentAbort = () => controller.abort(context.signal.reason);
    context.signal.addEventListener('abort', onParentAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new HandlerError('POSTBOX_ERR_HANDLER_TIMEOUT', `The handler ${context.handler} took longer than ${timeoutMs} ms.`, {
          timeoutMs,
        });
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    try {
      return await Promise.race([next(message, { ...context, signal: controller.signal }), expired]);
    } finally {
      clearTimeout(timer);
      context.signal.removeEventListener('abort', onParentAbort);
    }
  };
}

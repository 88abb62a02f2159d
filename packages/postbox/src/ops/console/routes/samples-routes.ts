import type { ConsoleRoutes } from '../console-context.js';

/** The sampler's ring: per sample, each group's lag and handled rate, and the log's append rate. */
export const samplesRoutes: ConsoleRoutes = (app, { sampler }) => {
  app.get('/api/samples', async () =>
    sampler
      ? {
          enabled: true,
          intervalMs: sampler.settings.intervalMs,
          windowMs: sampler.settings.windowMs,
          capacity: sampler.capacity,
          lastError: sampler.lastError,
          samples: sampler.samples(),
        }
      : { enabled: false, samples: [] },
  );
};

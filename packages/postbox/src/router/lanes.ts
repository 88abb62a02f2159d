/**
 * Runs items with the same key one after another, in order, and different keys in parallel, at
 * most `concurrency` at a time. Items without a key have no order to keep. When one fails, no new
 * key is started; the first error is thrown once the running ones settle.
 */
export async function runInLanes<T extends { key: string | null }>(
  items: readonly T[],
  concurrency: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  const lanes: T[][] = [];
  const byKey = new Map<string, T[]>();
  for (const item of items) {
    if (item.key === null) {
      lanes.push([item]);
      continue;
    }
    let lane = byKey.get(item.key);
    if (!lane) {
      lane = [];
      byKey.set(item.key, lane);
      lanes.push(lane);
    }
    lane.push(item);
  }
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < lanes.length) {
      const lane = lanes[next++] as T[];
      try {
        for (const item of lane) await run(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, lanes.length) }, worker));
  if (failure) throw failure.error;
}

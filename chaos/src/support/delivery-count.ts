/** What a sink holds compared with what was sent, message id by message id. */
export interface DeliveryCount {
  sent: number;
  /** Deliveries seen at the sink, duplicates included. */
  received: number;
  /** Sent ids the sink never saw. */
  lost: number;
  /** Deliveries beyond the first of each id. */
  duplicated: number;
  /** Ids at the sink that were never sent (from a rolled-back transaction, or made up). */
  unexpected: number;
  /** Up to five lost ids, for the report. */
  lostExamples: string[];
}

/** Compares the sent ids with the times each id was seen at the sink. */
export function countDeliveries(sentIds: readonly string[], seen: ReadonlyMap<string, number>): DeliveryCount {
  const sent = new Set(sentIds);
  let received = 0;
  let duplicated = 0;
  let unexpected = 0;
  for (const [id, times] of seen) {
    received += times;
    duplicated += Math.max(0, times - 1);
    if (!sent.has(id)) unexpected += 1;
  }
  const lostIds = [...sent].filter((id) => !seen.has(id));
  return { sent: sent.size, received, lost: lostIds.length, duplicated, unexpected, lostExamples: lostIds.slice(0, 5) };
}

/** Times each id appears in a list of ids. */
export function tally(ids: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** Where a routed message came from. */
export type MessageSource =
  | { kind: 'log'; transactionId: bigint; globalPosition: bigint }
  | { kind: 'kafka'; partition: number; offset: string };

/** A message as handlers see it, whichever transport brought it. */
export interface RoutedMessage<P = unknown> {
  id: string;
  topic: string;
  type: string;
  key: string | null;
  payload: P;
  headers: Record<string, string | number | undefined>;
  createdAt: Date;
  source: MessageSource;
  /** Set when the transport could not decode the bytes; such a message goes to dead letters at once. */
  decodeError?: Error;
  /** The undecoded body, kept for dead letters when decoding failed. */
  raw?: string;
}

export function describeSource(source: MessageSource): string {
  return source.kind === 'log' ? `${source.transactionId}/${source.globalPosition}` : `${source.partition}/${source.offset}`;
}

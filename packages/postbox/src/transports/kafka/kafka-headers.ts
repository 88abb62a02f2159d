import type { IHeaders } from 'kafkajs';

/** Kafka header names for the message fields Postbox carries across. */
export const kafkaHeaderNames = {
  id: 'message-id',
  type: 'message-type',
  traceId: 'trace-id',
  correlationId: 'correlation-id',
  causationId: 'causation-id',
  userId: 'user-id',
  schemaVersion: 'schema-version',
} as const;

const typed: Record<string, string> = Object.fromEntries(Object.entries(kafkaHeaderNames).map(([field, header]) => [field, header]));
const byHeader: Record<string, string> = Object.fromEntries(Object.entries(kafkaHeaderNames).map(([field, header]) => [header, field]));

/** Log headers (and the id and type) as Kafka headers: string values, typed names in kebab case. */
export function toKafkaHeaders(id: string, type: string, headers: Record<string, string | number | undefined>): IHeaders {
  const result: IHeaders = { [kafkaHeaderNames.id]: id, [kafkaHeaderNames.type]: type };
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    result[typed[name] ?? name] = String(value);
  }
  return result;
}

/** Kafka headers back into Postbox fields; the id and type come out separately. */
export function fromKafkaHeaders(headers: IHeaders | undefined): { id?: string; type?: string; headers: Record<string, string | number> } {
  const result: Record<string, string | number> = {};
  let id: string | undefined;
  let type: string | undefined;
  for (const [name, raw] of Object.entries(headers ?? {})) {
    if (raw === undefined) continue;
    const value = Array.isArray(raw) ? String(raw.at(-1)) : String(raw);
    if (name === kafkaHeaderNames.id) id = value;
    else if (name === kafkaHeaderNames.type) type = value;
    else if (name === kafkaHeaderNames.schemaVersion && /^\d+$/.test(value)) result.schemaVersion = Number(value);
    else result[byHeader[name] ?? name] = value;
  }
  return { id, type, headers: result };
}

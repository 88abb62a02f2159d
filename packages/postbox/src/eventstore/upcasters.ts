import { ValidationError } from '../errors/postbox-error.js';
import type { RecordedEvent } from './event.js';
import { UpcastError } from './upcast-error.js';

/** Turns the data of one schema version into the next version's. */
export type Upcaster = (data: any, event: RecordedEvent) => unknown;

/**
 * Upcasters by event type and schema version, applied in a chain on read (v1 → v2 → v3), so code
 * only ever sees the latest shape. Events carry their schema version in `headers.schemaVersion`.
 */
export class Upcasters {
  private readonly chains = new Map<string, Map<number, Upcaster>>();

  /** Registers the step from `fromVersion` to `fromVersion + 1` for events of `type`. */
  register(type: string, fromVersion: number, upcast: Upcaster): this {
    if (!Number.isSafeInteger(fromVersion) || fromVersion < 1) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `An upcaster's fromVersion must be a positive integer (got ${fromVersion}).`);
    }
    let chain = this.chains.get(type);
    if (!chain) {
      chain = new Map();
      this.chains.set(type, chain);
    }
    if (chain.has(fromVersion)) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_OPTION',
        `An upcaster of ${JSON.stringify(type)} from version ${fromVersion} is already registered.`,
      );
    }
    chain.set(fromVersion, upcast);
    return this;
  }

  /** The version new events of this type are written in: the end of its chain, or 1 without upcasters. */
  latestVersion(type: string): number {
    const chain = this.chains.get(type);
    if (!chain) return 1;
    let version = 1;
    while (chain.has(version)) version += 1;
    return Math.max(version, ...[...chain.keys()].map((from) => from + 1));
  }

  /** The event in the latest shape its chain reaches; the event itself when nothing applies. */
  upcast(event: RecordedEvent): RecordedEvent {
    const chain = this.chains.get(event.type);
    if (!chain) return event;
    let version = event.schemaVersion;
    let step = chain.get(version);
    if (!step) return event;
    let data: unknown = event.data;
    while (step) {
      try {
        data = step(data, { ...event, data, schemaVersion: version } as RecordedEvent);
      } catch (error) {
        throw new UpcastError(event.type, version, event.id, { cause: error });
      }
      version += 1;
      step = chain.get(version);
    }
    return { ...event, data, schemaVersion: version } as RecordedEvent;
  }
}

/** Applies upcasters when there are some. */
export function upcastAll(events: RecordedEvent[], upcasters: Upcasters | undefined): RecordedEvent[] {
  if (!upcasters) return events;
  return events.map((event) => upcasters.upcast(event));
}

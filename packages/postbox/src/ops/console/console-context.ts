import type { FastifyInstance } from 'fastify';
import type { Database } from '../../sql/database.js';
import type { KafkaRelayStats } from '../../transports/kafka/relay.js';
import type { ThroughputSampler } from './throughput-sampler.js';

/** What the relay panel needs of a relay: its statistics (a KafkaRelay has them). */
export interface RelayStatsSource {
  stats(): Promise<KafkaRelayStats>;
}

/** What every route of the console works with. */
export interface ConsoleContext {
  db: Database;
  relay: RelayStatsSource | undefined;
  sampler: ThroughputSampler | undefined;
  /** What the page is told about itself. */
  page: {
    tokenRequired: boolean;
    tokenName: string;
    readOnly: boolean;
    refreshMs: number;
    /** Dead letters one list shows unless it asks for more. */
    deadLetterLimit: number;
    /** Parked messages, and messages waiting for their time, one list shows unless it asks for more. */
    parkedLimit: number;
    scheduledLimit: number;
    /** Which database this is, with any password masked. */
    database: string;
  };
}

/** One resource of the console's API: adds its routes under the console's prefix. */
export type ConsoleRoutes = (app: FastifyInstance, context: ConsoleContext) => void;

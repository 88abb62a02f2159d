import type { EventEmitter } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import pg from 'pg';

/** What a process holds at one moment, after a full garbage collection. */
export interface Footprint {
  rssBytes: number;
  heapUsedBytes: number;
  /** process.getActiveResourcesInfo(), counted by type (TCPSocketWrap, Timeout, ...). */
  resources: Record<string, number>;
  /** node-postgres connections open now (the pool's and the LISTEN connection). */
  connections: number;
  /** The most listeners any open connection has, counting its client, protocol connection and socket. */
  maxListenersPerConnection: number;
}

/** A full collection on demand, without starting node with --expose-gc. */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

function listenerCount(emitter: EventEmitter | undefined): number {
  if (!emitter) return 0;
  return emitter.eventNames().reduce((sum, name) => sum + emitter.listenerCount(name), 0);
}

type TrackedClient = pg.Client & { connection?: EventEmitter & { stream?: EventEmitter }; _ending?: boolean; _ended?: boolean };

/**
 * Measures this process's memory, handles and node-postgres listeners. Create it before the
 * database is opened: it notes every pg client that connects from then on.
 */
export class FootprintMeter {
  private readonly gc = collector();
  private readonly clients = new Set<WeakRef<TrackedClient>>();

  constructor() {
    const clients = this.clients;
    const connect = pg.Client.prototype.connect as (this: TrackedClient, ...args: unknown[]) => unknown;
    pg.Client.prototype.connect = function (this: TrackedClient, ...args: unknown[]) {
      clients.add(new WeakRef(this));
      return connect.apply(this, args);
    } as typeof pg.Client.prototype.connect;
  }

  measure(): Footprint {
    this.gc();
    this.gc();
    const memory = process.memoryUsage();
    const resources: Record<string, number> = {};
    for (const type of process.getActiveResourcesInfo()) resources[type] = (resources[type] ?? 0) + 1;
    let connections = 0;
    let maxListenersPerConnection = 0;
    for (const ref of this.clients) {
      const client = ref.deref();
      if (!client || client._ending || client._ended) {
        this.clients.delete(ref);
        continue;
      }
      connections += 1;
      const listeners = listenerCount(client) + listenerCount(client.connection) + listenerCount(client.connection?.stream);
      maxListenersPerConnection = Math.max(maxListenersPerConnection, listeners);
    }
    return { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, resources, connections, maxListenersPerConnection };
  }
}

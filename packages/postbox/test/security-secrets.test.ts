import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readiness } from '../src/observability/health.js';
import { createLogger } from '../src/observability/logger.js';
import { PostboxMetrics } from '../src/observability/metrics.js';
import { startOpsServer } from '../src/ops/ops-server.js';
import { Postbox } from '../src/postbox.js';
import { connectionPasswords, describePostgresUrl } from '../src/sql/connection-secrets.js';
import { postgresDatabase } from '../src/sql/postgres-database.js';
import { kafkaSettingsFromEnv } from '../src/transports/kafka/kafka-env.js';
import { createKafkaRelay } from '../src/transports/kafka/relay.js';
import { startMockCluster } from './support/kafka-mock.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/postgres.js';
import { propertyRuns } from './support/properties.js';
import { waitFor } from './support/wait.js';

const password = 'Pw-Recognisable-7731';

/** A pino logger at trace level whose lines are kept in memory. */
function capturedLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level: 'trace', name: 'secrets-test', destination }), text: () => lines.join('') };
}

/** The server's URL for a database, with a password the server (trust auth) ignores. */
function withPassword(url: string, secret = password): string {
  const parsed = new URL(url);
  parsed.username ||= 'postgres';
  parsed.password = encodeURIComponent(secret);
  return parsed.toString();
}

/** Everything an error can show: message, stack, own properties, causes. */
function everything(error: unknown): string {
  return `${inspect(error, { depth: 6 })} ${JSON.stringify(error)} ${(error as Error)?.stack ?? ''}`;
}

describe('connection URLs in text', () => {
  it('describe a URL without its password, whatever the password or user name holds', () => {
    const secretPart = fc.string({ unit: fc.constantFrom('a', 'Z', '9', '/', '#', '?', '@', ':', ' ', '%', 'é', '"', "'"), maxLength: 12 });
    fc.assert(
      fc.property(secretPart, fc.constantFrom('app', 'us@er', 'a:b'), fc.boolean(), (middle, user, encoded) => {
        const secret = `Pw-${middle}-Zq`;
        const written = encoded ? encodeURIComponent(secret) : secret;
        const url = `postgres://${user}:${written}@db.example.com:5432/app?sslmode=require`;
        const shown = describePostgresUrl(url);
        expect(shown).not.toContain(secret);
        expect(shown).not.toContain(written);
        expect(shown).toContain('db.example.com');
        if (!encoded || URL.canParse(url)) expect(connectionPasswords(url).some((found) => found.includes('Pw-'))).toBe(true);
      }),
      propertyRuns(300),
    );
    expect(describePostgresUrl('postgres://app@db/app?password=Pw-In-Query-1&sslmode=require')).toBe(
      'postgres://app@db/app?password=***&sslmode=require',
    );
  });
});

describe('a Postbox whose URL holds a password', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('keeps it out of its description, its logs, group errors and readiness', async () => {
    const { logger, text } = capturedLogger();
    const url = withPassword(database.url);
    const postbox = await Postbox.create({ databaseUrl: url, logger });
    try {
      expect(postbox.db.description).not.toContain(password);
      expect(postbox.db.description).toContain('***');
      logger.info({ database: postbox.db.description, databaseUrl: url, config: { password } }, 'started');
      // A handler whose error quotes the URL, as some drivers do.
      const consumer = postbox.consumer({
        group: 'quoting-the-url',
        topics: ['secrets'],
        pollIntervalMs: 50,
        retryDelayMs: 20,
        handleMessage: async () => {
          throw new Error(`cannot reach ${url}`);
        },
      });
      await consumer.start();
      await postbox.publish({ topic: 'secrets', type: 'probe', payload: {} });
      await waitFor(async () => (await postbox.groupStatus('quoting-the-url'))[0]?.lastError !== null, 15_000, 'the group error');
      await consumer.stop(5_000);
      const report = await readiness(postbox.db, { maxLagMessages: 10 });
      expect(report.checks.find((check) => check.name === 'group:quoting-the-url')?.status).toBe('degraded');
      const ops = await startOpsServer({ db: postbox.db, metrics: new PostboxMetrics(postbox.db), port: 0 });
      try {
        const ready = await (await fetch(`${ops.url}/health/ready`)).text();
        const metrics = await (await fetch(`${ops.url}/metrics`)).text();
        for (const shown of [JSON.stringify(report), ready, metrics]) expect(shown).not.toContain(password);
        expect(ready).toContain('failing: cannot reach');
      } finally {
        await ops.close();
      }
    } finally {
      await postbox.close(2_000);
    }
    expect(text()).toContain('started');
    expect(text()).not.toContain(password);
  });

  it('keeps it out of the errors of a failed connection and of an unready database', async () => {
    const unreachable = new URL(withPassword(serverUrl));
    unreachable.port = '1';
    const cases = [
      unreachable.toString(),
      withPassword(new URL('/postbox_no_such_database', serverUrl).toString()),
      `postgres://postgres:${password}@no-such-host.invalid:5432/postgres`,
      `postgres://postgres:${password}@127.0.0.1:notaport/postgres`,
      `postgres://no_such_role:${password}@${new URL(serverUrl).host}/postgres`,
    ];
    for (const url of cases) {
      const { logger, text } = capturedLogger();
      const error = await Postbox.create({ databaseUrl: url, logger, pool: { max: 1 } }).then(
        async (postbox) => {
          await postbox.close();
          return undefined;
        },
        (caught: unknown) => caught,
      );
      expect(error, url).toBeInstanceOf(Error);
      logger.error({ err: error }, 'could not start');
      expect(everything(error), url).not.toContain(password);
      expect(text(), url).not.toContain(password);
    }
    const db = postgresDatabase(unreachable.toString());
    try {
      const report = await readiness(db, { maxLagMessages: 10 });
      expect(report.status).toBe('unhealthy');
      expect(JSON.stringify(report)).toContain('ECONNREFUSED');
      expect(JSON.stringify(report)).not.toContain(password);
    } finally {
      await db.close();
    }
  });
});

describe('Kafka SASL credentials', () => {
  it('never appear in configuration errors', () => {
    const attempts = [
      { KAFKA_BROKERS: 'kafka:9092', KAFKA_SASL_PASSWORD: password },
      { KAFKA_BROKERS: 'kafka:9092', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: password },
      { KAFKA_BROKERS: 'kafka:9092', KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: password },
    ];
    for (const env of attempts) {
      let error: unknown;
      try {
        kafkaSettingsFromEnv(env, 'test');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).not.toContain(password);
    }
  });

  it('never appear in the relay logs, statistics or health when the broker refuses the handshake', async () => {
    const cluster = await startMockCluster();
    const database = await createTestDatabase();
    const { logger, text } = capturedLogger();
    const postbox = await Postbox.create({ databaseUrl: database.url, logger });
    try {
      await cluster.createTopic('sasl-secrets', 1);
      const relay = createKafkaRelay(postbox, {
        kafka: { brokers: cluster.brokers, sasl: { mechanism: 'plain', username: 'relay', password }, connectionTimeoutMs: 2_000 },
        topics: ['sasl-secrets'],
        idempotent: false,
        retryDelayMs: 50,
        logger,
      });
      await relay.start();
      try {
        await postbox.publish({ topic: 'sasl-secrets', type: 'probe', payload: { n: 1 } });
        await waitFor(async () => (await relay.stats()).lastError !== null, 30_000, 'the refused handshake');
        const shown = inspect([await relay.stats(), await relay.health(), await postbox.groupStatus()], { depth: 6 });
        expect(shown).not.toContain(password);
      } finally {
        await relay.stop(5_000);
      }
    } finally {
      await postbox.close(2_000);
      await database.drop();
      await cluster.stop();
    }
    expect(text()).not.toContain(password);
  });
});

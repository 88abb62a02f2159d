import type { Scenario } from './scenario.js';
import { crashHistoryConsumer } from './scenarios/crash-history-consumer.js';
import { crashKafkaRelay } from './scenarios/crash-kafka-relay.js';
import { crashTodoApi } from './scenarios/crash-todo-api.js';
import { crashTransactionalConsumer } from './scenarios/crash-transactional-consumer.js';
import { gracefulShutdown } from './scenarios/graceful-shutdown.js';
import { kafkaBrokerOutage } from './scenarios/kafka-broker-outage.js';
import { longTransaction } from './scenarios/long-transaction.js';
import { memory } from './scenarios/memory.js';
import { outOfOrderCommits } from './scenarios/out-of-order-commits.js';
import { postgresRestart } from './scenarios/postgres-restart.js';
import { rebalance } from './scenarios/rebalance.js';
import { slowAndPoisonHandlers } from './scenarios/slow-and-poison-handlers.js';
import { time } from './scenarios/time.js';

/** Every scenario, in the order `npm run chaos` runs them. */
export const scenarios: readonly Scenario[] = [
  crashTransactionalConsumer,
  outOfOrderCommits,
  crashKafkaRelay,
  crashHistoryConsumer,
  gracefulShutdown,
  rebalance,
  crashTodoApi,
  postgresRestart,
  kafkaBrokerOutage,
  longTransaction,
  slowAndPoisonHandlers,
  time,
  memory,
];

export function selectScenarios(names: readonly string[] | undefined): Scenario[] {
  if (!names || names.length === 0) return [...scenarios];
  const unknown = names.filter((name) => !scenarios.some((scenario) => scenario.name === name));
  if (unknown.length > 0) {
    throw new Error(`Unknown scenario ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`);
  }
  return scenarios.filter((scenario) => names.includes(scenario.name));
}

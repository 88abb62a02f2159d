import type { FastifyInstance } from 'fastify';
import { type DeadLetter, type GroupStatus, isPostboxError, type Postbox, redactUrl } from 'postbox';
import type { KafkaRelay } from 'postbox/kafka';
import { z } from 'zod';
import { appDefaults } from '../defaults.js';
import { notFound } from '../errors.js';
import { parseRequest, storableText } from '../http/validation.js';
import type { opsGuard } from './ops-auth.js';

/** What the ops view needs of a relay: its statistics. */
export type RelayStats = Pick<KafkaRelay, 'stats'>;

export interface OpsRouteOptions {
  postbox: Postbox;
  guard: ReturnType<typeof opsGuard>;
  relay: RelayStats | undefined;
}

function groupJson(status: GroupStatus) {
  const [only] = status.partitions.length === 1 ? status.partitions : [];
  return {
    group: status.group,
    topics: status.topics,
    status: status.status,
    ephemeral: status.ephemeral,
    leaseOwner: only ? (only.owner ?? only.expiredOwner) : null,
    leaseActive: only ? only.owner !== null : false,
    lagMessages: status.lagMessages,
    lagSeconds: status.lagSeconds,
    lastError: status.lastError === null ? null : redactUrl(status.lastError),
    lastSeenAt: status.lastSeenAt.toISOString(),
    checkpoint: only
      ? { transactionId: only.checkpoint.transactionId.toString(), globalPosition: only.checkpoint.globalPosition.toString() }
      : null,
    partitions: status.partitions.map((partition) => ({
      partition: partition.partition,
      owner: partition.owner,
      expiredOwner: partition.expiredOwner,
      checkpoint: {
        transactionId: partition.checkpoint.transactionId.toString(),
        globalPosition: partition.checkpoint.globalPosition.toString(),
      },
      lagMessages: partition.lagMessages,
      lagSeconds: partition.lagSeconds,
      unownedSeconds: partition.unownedSeconds,
      lastError: partition.lastError === null ? null : redactUrl(partition.lastError),
    })),
    members: status.members.map((member) => ({
      member: member.member,
      live: member.live,
      joinedAt: member.joinedAt.toISOString(),
      expiresAt: member.expiresAt.toISOString(),
      partitions: member.partitions,
    })),
  };
}

function deadLetterJson(letter: DeadLetter) {
  const { errorStack: _stack, ...rest } = letter;
  return { ...rest, errorMessage: redactUrl(letter.errorMessage) };
}

const { deadLetterLimit, maxDeadLetterLimit } = appDefaults.ops;

const deadLetterQuery = z.object({
  group: storableText(200, { trim: false }).optional(),
  limit: z
    .string()
    .refine(
      (value) => /^\d{1,7}$/.test(value) && Number(value) >= 1 && Number(value) <= maxDeadLetterLimit,
      `must be an integer from 1 to ${maxDeadLetterLimit}`,
    )
    .transform(Number)
    .optional(),
});

const readOnlyMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The operations view: consumer groups and their lag, dead letters (retry, discard), the relay. */
export function registerOpsApiRoutes(app: FastifyInstance, options: OpsRouteOptions): void {
  const { postbox, guard } = options;

  // Every ops route that changes state passes the guard, including any added later, before its body is read.
  app.addHook('onRequest', async (request) => {
    if (!readOnlyMethods.has(request.method) && request.routeOptions.url?.startsWith('/api/ops/')) guard(request);
  });

  app.get('/api/ops/groups', async () => (await postbox.groupStatus()).map(groupJson));

  app.get('/api/ops/dead-letters', async (request) => {
    const query = parseRequest(deadLetterQuery, request.query, 'query');
    const letters = await postbox.deadLetters.list({ status: 'open', group: query.group, limit: query.limit ?? deadLetterLimit });
    return letters.map(deadLetterJson);
  });

  for (const action of ['retry', 'discard'] as const) {
    app.post(`/api/ops/dead-letters/:id/${action}`, async (request) => {
      const id = String((request.params as Record<string, unknown>).id);
      try {
        await postbox.deadLetters[action]({ id });
      } catch (error) {
        if (isPostboxError(error, 'POSTBOX_ERR_DEAD_LETTER_NOT_FOUND')) throw notFound(error.message);
        throw error;
      }
      return { id, status: action === 'retry' ? 'retrying' : 'discarded' };
    });
  }

  app.get('/api/ops/relay', async () => (options.relay ? { enabled: true, ...(await options.relay.stats()) } : { enabled: false }));
}

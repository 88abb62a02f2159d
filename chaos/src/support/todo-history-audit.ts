import type { Executor } from 'postbox';
import { taskStatuses } from '../../../apps/todo-history/src/todos/todo-schemas.js';
import type { RequestRecord } from './todo-api-load.js';

interface HistoryRow {
  id: string;
  message_id: string;
  event_type: string;
  entity: string;
  entity_id: string;
  task_id: string | null;
  group_name: string | null;
  task_name: string | null;
  changes: string | null;
  at: string;
}

interface LogRow {
  message_id: string;
  event_type: string;
  entity: string;
  entity_id: string;
  changes: string;
  at: string;
}

export interface TodoAudit {
  /** Changes committed to the outbox (messages of the topic). */
  committed: number;
  historyRows: number;
  /** Committed changes without their history entry, and acknowledged changes whose row is missing. */
  lost: number;
  duplicated: number;
  violations: string[];
  notes: string[];
}

const statusChange = /^Status changed from (\S+) to (\S+)$/;

/** Up to `limit` examples and how many there are, as words for a violation. */
function some(items: readonly string[], limit = 3): string {
  return `${items.length} (e.g. ${items.slice(0, limit).join('; ')})`;
}

async function load(db: Executor, topic: string) {
  const history = await db.query<HistoryRow>(
    `select id::text as id, message_id, event_type, entity, entity_id, task_id, group_name, task_name, changes,
            to_char("timestamp" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at
     from todo_event_logs`,
  );
  const log = await db.query<LogRow>(
    `select message_id::text as message_id, payload->>'eventType' as event_type, payload->'payload'->>'entity' as entity,
            payload->'payload'->>'entityId' as entity_id, payload->'payload'->>'changes' as changes, payload->>'timestamp' as at
     from postbox.messages where topic = $1`,
    [topic],
  );
  const groups = await db.query<{ group_id: string; name: string }>('select group_id::text as group_id, name from todo_groups');
  const tasks = await db.query<{ task_id: string; name: string; status: string }>(
    'select task_id::text as task_id, name, status from todo_tasks',
  );
  const comments = await db.query<{ comment_id: string; task_id: string; text: string; at: string }>(
    `select comment_id::text as comment_id, task_id::text as task_id, text,
            to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at
     from todo_comments`,
  );
  return { history: history.rows, log: log.rows, groups: groups.rows, tasks: tasks.rows, comments: comments.rows };
}

/**
 * Checks the todo board against its history and against what the clients were told:
 * - every committed change (outbox message) has exactly one history row, and every history row a committed message;
 * - every group, task and comment row has its event in the log and its history row, and every such history row its row;
 * - each task's status changes in the history chain from `pending` to its current status;
 * - every acknowledged request has its row, and its history entry at the time the response gave.
 */
export async function auditTodoHistory(db: Executor, topic: string, records: readonly RequestRecord[]): Promise<TodoAudit> {
  const { history, log, groups, tasks, comments } = await load(db, topic);
  const violations: string[] = [];
  const notes: string[] = [];

  const historyByMessage = new Map<string, HistoryRow[]>();
  for (const row of history) historyByMessage.set(row.message_id, [...(historyByMessage.get(row.message_id) ?? []), row]);
  const logIds = new Set(log.map((row) => row.message_id));
  const withoutHistory = log.filter((row) => !historyByMessage.has(row.message_id)).map((row) => row.message_id);
  const phantom = [...historyByMessage.keys()].filter((id) => !logIds.has(id));
  const duplicated = history.length - historyByMessage.size;
  if (withoutHistory.length > 0) violations.push(`committed changes without a history row: ${some(withoutHistory)}`);
  if (phantom.length > 0) violations.push(`history rows whose message was never committed: ${some(phantom)}`);
  if (duplicated > 0) violations.push(`${duplicated} history rows repeat a message id`);

  // Row <-> event <-> history, for each kind of row.
  const key = (...parts: (string | null)[]) => parts.join('\u0000');
  const logKeys = new Set(
    log.map((row) => key(row.event_type, row.entity, row.entity_id, row.event_type === 'commented' ? `${row.at} ${row.changes}` : '')),
  );
  const historyKeys = new Set(
    history.map((row) => key(row.event_type, row.entity, row.entity_id, row.event_type === 'commented' ? `${row.at} ${row.changes}` : '')),
  );
  const rowKeys = [
    ...groups.map((group) => ({ what: `group ${group.group_id}`, key: key('created', 'Group', group.group_id, '') })),
    ...tasks.map((task) => ({ what: `task ${task.task_id}`, key: key('created', 'Task', task.task_id, '') })),
    ...comments.map((comment) => ({
      what: `comment ${comment.comment_id}`,
      key: key('commented', 'Task', comment.task_id, `${comment.at} Comment added: ${comment.text}`),
    })),
  ];
  const rowsWithoutEvent = rowKeys.filter((row) => !logKeys.has(row.key)).map((row) => row.what);
  const rowsWithoutHistory = rowKeys.filter((row) => !historyKeys.has(row.key)).map((row) => row.what);
  if (rowsWithoutEvent.length > 0) violations.push(`rows committed without their outbox event: ${some(rowsWithoutEvent)}`);
  if (rowsWithoutHistory.length > 0) violations.push(`rows without their history entry: ${some(rowsWithoutHistory)}`);
  const rowKeySet = new Set(rowKeys.map((row) => row.key));
  const historyWithoutRow = history
    .filter((row) => row.event_type === 'created' || row.event_type === 'commented')
    .filter(
      (row) =>
        !rowKeySet.has(key(row.event_type, row.entity, row.entity_id, row.event_type === 'commented' ? `${row.at} ${row.changes}` : '')),
    )
    .map((row) => `${row.event_type} ${row.entity} ${row.entity_id}`);
  if (historyWithoutRow.length > 0) violations.push(`history entries whose change is not in the database: ${some(historyWithoutRow)}`);

  // Each task's status history must lead, step by step, from pending to the status it has now.
  const changesByTask = new Map<string, HistoryRow[]>();
  for (const row of history.filter((r) => r.event_type === 'status_changed')) {
    changesByTask.set(row.entity_id, [...(changesByTask.get(row.entity_id) ?? []), row]);
  }
  const brokenChains: string[] = [];
  for (const task of tasks) {
    const steps = (changesByTask.get(task.task_id) ?? []).sort((a, b) => a.at.localeCompare(b.at) || Number(a.id) - Number(b.id));
    let status = 'pending';
    for (const step of steps) {
      const [, from, to] = statusChange.exec(step.changes ?? '') ?? [];
      if (from !== status || !to) {
        brokenChains.push(`task ${task.task_id}: "${step.changes}" after ${status}`);
        break;
      }
      status = to;
    }
    if (status !== task.status) brokenChains.push(`task ${task.task_id}: history ends at ${status}, the row says ${task.status}`);
  }
  const tasksById = new Set(tasks.map((task) => task.task_id));
  for (const taskId of changesByTask.keys())
    if (!tasksById.has(taskId)) brokenChains.push(`status changes of a task that does not exist: ${taskId}`);
  if (brokenChains.length > 0) violations.push(`status histories that do not match the tasks: ${some(brokenChains)}`);

  // What the clients were told.
  const groupIds = new Set(groups.map((group) => group.group_id));
  const commentIds = new Set(comments.map((comment) => comment.comment_id));
  const historyAt = new Set(history.map((row) => key(row.entity_id, row.at, row.event_type, row.changes)));
  const acknowledgedMissing: string[] = [];
  const badStatuses: string[] = [];
  for (const record of records.filter((r) => r.outcome === 'ok')) {
    const body = record.body ?? {};
    const operation = record.operation;
    switch (operation.kind) {
      case 'create-group':
        if (!groupIds.has(String(body.groupId))) acknowledgedMissing.push(`group ${String(body.groupId)} (${operation.token})`);
        break;
      case 'create-task':
        if (!tasksById.has(String(body.taskId))) acknowledgedMissing.push(`task ${String(body.taskId)} (${operation.token})`);
        break;
      case 'comment':
        if (!commentIds.has(String(body.commentId))) acknowledgedMissing.push(`comment ${String(body.commentId)} (${operation.token})`);
        break;
      case 'change-status': {
        const at = String(body.updatedAt);
        const changed = taskStatuses.some((from) =>
          historyAt.has(key(operation.taskId, at, 'status_changed', `Status changed from ${from} to ${operation.status}`)),
        );
        const unchangedSinceCreated =
          operation.status === 'pending' &&
          history.some((row) => row.entity_id === operation.taskId && row.at === at && row.event_type === 'created');
        if (body.status !== operation.status) badStatuses.push(`${operation.token} asked ${operation.status}, got ${String(body.status)}`);
        else if (!changed && !unchangedSinceCreated)
          acknowledgedMissing.push(`status ${operation.status} of task ${operation.taskId} at ${at} (${operation.token})`);
        break;
      }
    }
  }
  if (acknowledgedMissing.length > 0)
    violations.push(`acknowledged changes missing their row or history entry: ${some(acknowledgedMissing)}`);
  if (badStatuses.length > 0) violations.push(`acknowledged status changes with another status: ${some(badStatuses)}`);
  const httpErrors = records.filter((r) => r.outcome === 'http-error');
  if (httpErrors.length > 0) {
    violations.push(
      `HTTP errors: ${some(httpErrors.map((r) => `${r.operation.kind} ${r.operation.token}: ${r.status} ${JSON.stringify(r.body)}`))}`,
    );
  }

  // Requests that got no answer: did they commit? Either is fine; the checks above make row and history agree.
  const unanswered = records.filter((r) => r.outcome === 'no-response');
  const names = new Set([...groups.map((g) => g.name), ...tasks.map((t) => t.name), ...comments.map((c) => c.text)]);
  const committedUnanswered = unanswered.filter((r) => {
    const operation = r.operation;
    if (operation.kind === 'create-group' || operation.kind === 'create-task') return names.has(operation.name);
    if (operation.kind === 'comment') return names.has(operation.text);
    return false;
  }).length;
  const count = (outcome: string) => records.filter((r) => r.outcome === outcome).length;
  notes.push(
    `${records.length} requests: ${count('ok')} acknowledged, ${unanswered.length} without an answer ` +
      `(${committedUnanswered} of the ${unanswered.filter((r) => r.operation.kind !== 'change-status').length} creates and comments among them committed), ` +
      `${count('refused')} refused while the app was down, ${httpErrors.length} HTTP errors`,
  );
  notes.push(
    `${groups.length} groups, ${tasks.length} tasks, ${comments.length} comments, ${log.length} events, ${history.length} history rows`,
  );
  return {
    committed: log.length,
    historyRows: history.length,
    lost: withoutHistory.length + rowsWithoutEvent.length + acknowledgedMissing.length,
    duplicated,
    violations,
    notes,
  };
}

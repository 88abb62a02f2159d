import type { Executor } from 'postbox';
import type { TaskStatus } from './todo-schemas.js';

export interface GroupRow {
  groupId: string;
  name: string;
  workspace: string;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface TaskRow {
  taskId: string;
  groupId: string;
  name: string;
  description: string;
  status: TaskStatus;
  commentCount: number;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface CommentRow {
  commentId: string;
  taskId: string;
  text: string;
  user: string;
  createdAt: string;
}

const iso = (value: unknown) => new Date(value as string).toISOString();

function toGroup(row: Record<string, unknown>): GroupRow {
  return {
    groupId: row.group_id as string,
    name: row.name as string,
    workspace: row.workspace as string,
    createdBy: row.created_by as string,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

function toTask(row: Record<string, unknown>): TaskRow {
  return {
    taskId: row.task_id as string,
    groupId: row.group_id as string,
    name: row.name as string,
    description: row.description as string,
    status: row.status as TaskStatus,
    commentCount: Number(row.comment_count ?? 0),
    createdBy: row.created_by as string,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

const groupColumns = 'group_id::text as group_id, name, workspace, created_by, created_at, updated_at';
const taskColumns = `t.task_id::text as task_id, t.group_id::text as group_id, t.name, t.description, t.status, t.created_by, t.created_at,
  t.updated_at, (select count(*) from todo_comments c where c.task_id = t.task_id)::int as comment_count`;

export async function insertGroup(tx: Executor, group: Omit<GroupRow, 'createdAt' | 'updatedAt'>, at: Date): Promise<GroupRow> {
  const { rows } = await tx.query(
    `insert into todo_groups (group_id, name, workspace, created_by, created_at, updated_at) values ($1, $2, $3, $4, $5, $5)
     returning ${groupColumns}`,
    [group.groupId, group.name, group.workspace, group.createdBy, at],
  );
  return toGroup(rows[0] as Record<string, unknown>);
}

/** The group, locked for the rest of the transaction; undefined when there is none. */
export async function lockGroup(tx: Executor, groupId: string): Promise<GroupRow | undefined> {
  const { rows } = await tx.query(`select ${groupColumns} from todo_groups where group_id = $1 for update`, [groupId]);
  return rows[0] ? toGroup(rows[0]) : undefined;
}

export async function renameGroup(tx: Executor, groupId: string, name: string, at: Date): Promise<GroupRow> {
  const { rows } = await tx.query(`update todo_groups set name = $2, updated_at = $3 where group_id = $1 returning ${groupColumns}`, [
    groupId,
    name,
    at,
  ]);
  return toGroup(rows[0] as Record<string, unknown>);
}

export async function deleteGroup(tx: Executor, groupId: string): Promise<void> {
  await tx.query('delete from todo_groups where group_id = $1', [groupId]);
}

export async function listGroups(db: Executor): Promise<GroupRow[]> {
  const { rows } = await db.query(`select ${groupColumns} from todo_groups order by created_at, group_id`);
  return rows.map(toGroup);
}

export async function listTasks(db: Executor, groupId?: string): Promise<TaskRow[]> {
  const { rows } = await db.query(
    `select ${taskColumns} from todo_tasks t where $1::uuid is null or t.group_id = $1 order by t.created_at, t.task_id`,
    [groupId ?? null],
  );
  return rows.map(toTask);
}

export async function insertTask(
  tx: Executor,
  task: Pick<TaskRow, 'taskId' | 'groupId' | 'name' | 'description' | 'createdBy'>,
  at: Date,
): Promise<TaskRow> {
  await tx.query(
    `insert into todo_tasks (task_id, group_id, name, description, status, created_by, created_at, updated_at)
     values ($1, $2, $3, $4, 'pending', $5, $6, $6)`,
    [task.taskId, task.groupId, task.name, task.description, task.createdBy, at],
  );
  return (await getTask(tx, task.taskId)) as TaskRow;
}

export async function getTask(db: Executor, taskId: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query(`select ${taskColumns} from todo_tasks t where t.task_id = $1`, [taskId]);
  return rows[0] ? toTask(rows[0]) : undefined;
}

/** The task and its group, both locked for the rest of the transaction. */
export async function lockTask(tx: Executor, taskId: string): Promise<{ task: TaskRow; group: GroupRow } | undefined> {
  const { rows } = await tx.query(
    `select ${taskColumns}, g.name as group_name, g.workspace, g.created_by as group_created_by,
            g.created_at as group_created_at, g.updated_at as group_updated_at
     from todo_tasks t join todo_groups g on g.group_id = t.group_id
     where t.task_id = $1
     for update of t, g`,
    [taskId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    task: toTask(row),
    group: toGroup({
      group_id: row.group_id,
      name: row.group_name,
      workspace: row.workspace,
      created_by: row.group_created_by,
      created_at: row.group_created_at,
      updated_at: row.group_updated_at,
    }),
  };
}

export async function updateTask(
  tx: Executor,
  taskId: string,
  changes: { name?: string; description?: string; status?: TaskStatus },
  at: Date,
): Promise<TaskRow> {
  await tx.query(
    `update todo_tasks set name = coalesce($2, name), description = coalesce($3, description), status = coalesce($4, status), updated_at = $5
     where task_id = $1`,
    [taskId, changes.name ?? null, changes.description ?? null, changes.status ?? null, at],
  );
  return (await getTask(tx, taskId)) as TaskRow;
}

export async function deleteTask(tx: Executor, taskId: string): Promise<void> {
  await tx.query('delete from todo_tasks where task_id = $1', [taskId]);
}

export async function insertComment(tx: Executor, comment: Omit<CommentRow, 'createdAt'>, at: Date): Promise<CommentRow> {
  await tx.query('insert into todo_comments (comment_id, task_id, text, user_name, created_at) values ($1, $2, $3, $4, $5)', [
    comment.commentId,
    comment.taskId,
    comment.text,
    comment.user,
    at,
  ]);
  return { ...comment, createdAt: at.toISOString() };
}

export async function listComments(db: Executor, taskId: string): Promise<CommentRow[]> {
  const { rows } = await db.query(
    `select comment_id::text as comment_id, task_id::text as task_id, text, user_name, created_at
     from todo_comments where task_id = $1 order by created_at, comment_id`,
    [taskId],
  );
  return rows.map((row) => ({
    commentId: row.comment_id as string,
    taskId: row.task_id as string,
    text: row.text as string,
    user: row.user_name as string,
    createdAt: iso(row.created_at),
  }));
}

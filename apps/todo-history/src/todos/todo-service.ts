import { randomUUID } from 'node:crypto';
import type { Executor, Postbox } from 'postbox';
import { notFound } from '../errors.js';
import { type Change, describe, type GroupRef, todoMessage } from './todo-events.js';
import type { TaskStatus } from './todo-schemas.js';
import * as store from './todo-store.js';

export interface GroupWithTasks extends store.GroupRow {
  tasks: store.TaskRow[];
}

const groupRef = (group: store.GroupRow): GroupRef => ({ groupId: group.groupId, name: group.name, workspace: group.workspace });
const noGroup = (groupId: string) => notFound(`No group has id ${JSON.stringify(groupId)}.`);
const noTask = (taskId: string) => notFound(`No task has id ${JSON.stringify(taskId)}.`);

/**
 * The todo board. Every change writes its rows and its history event (in the todo-history event
 * format, through the outbox) in one transaction: the event exists if and only if the change
 * committed.
 */
export class TodoService {
  constructor(
    private readonly postbox: Postbox,
    private readonly topic: string,
  ) {}

  private async record(tx: Executor, changes: Change[]): Promise<void> {
    if (changes.length > 0)
      await this.postbox.enqueue(
        tx,
        changes.map((change) => todoMessage(this.topic, change)),
      );
  }

  async listGroups(): Promise<GroupWithTasks[]> {
    const [groups, tasks] = await Promise.all([store.listGroups(this.postbox.db), store.listTasks(this.postbox.db)]);
    return groups.map((group) => ({ ...group, tasks: tasks.filter((task) => task.groupId === group.groupId) }));
  }

  createGroup(input: { name: string; workspace: string; user: string }): Promise<store.GroupRow> {
    return this.postbox.transaction(async (tx) => {
      const at = new Date();
      const group = await store.insertGroup(
        tx,
        { groupId: randomUUID(), name: input.name, workspace: input.workspace, createdBy: input.user },
        at,
      );
      const changes = describe.created('Group', group.name);
      await this.record(tx, [{ eventType: 'created', group: groupRef(group), changes, user: input.user, at }]);
      return group;
    });
  }

  renameGroup(groupId: string, input: { name: string; user: string }): Promise<store.GroupRow> {
    return this.postbox.transaction(async (tx) => {
      const before = await store.lockGroup(tx, groupId);
      if (!before) throw noGroup(groupId);
      if (before.name === input.name) return before;
      const at = new Date();
      const group = await store.renameGroup(tx, groupId, input.name, at);
      const changes = describe.renamed('Group', before.name, group.name);
      await this.record(tx, [{ eventType: 'updated', group: groupRef(group), changes, user: input.user, at }]);
      return group;
    });
  }

  /** Deletes the group and its tasks: one `deleted` event per task, then the group's. */
  deleteGroup(groupId: string, user: string): Promise<{ groupId: string; deletedTaskIds: string[] }> {
    return this.postbox.transaction(async (tx) => {
      const group = await store.lockGroup(tx, groupId);
      if (!group) throw noGroup(groupId);
      const tasks = await store.listTasks(tx, groupId);
      await store.deleteGroup(tx, groupId);
      const at = new Date();
      const ref = groupRef(group);
      await this.record(tx, [
        ...tasks.map(
          (task): Change => ({ eventType: 'deleted', group: ref, task, changes: describe.deleted('Task', task.name), user, at }),
        ),
        { eventType: 'deleted', group: ref, changes: describe.deleted('Group', group.name), user, at },
      ]);
      return { groupId, deletedTaskIds: tasks.map((task) => task.taskId) };
    });
  }

  createTask(groupId: string, input: { name: string; description: string; user: string }): Promise<store.TaskRow> {
    return this.postbox.transaction(async (tx) => {
      const group = await store.lockGroup(tx, groupId);
      if (!group) throw noGroup(groupId);
      const at = new Date();
      const task = await store.insertTask(
        tx,
        { taskId: randomUUID(), groupId, name: input.name, description: input.description, createdBy: input.user },
        at,
      );
      const changes = describe.created('Task', task.name);
      await this.record(tx, [{ eventType: 'created', group: groupRef(group), task, changes, user: input.user, at }]);
      return task;
    });
  }

  updateTask(taskId: string, input: { name?: string; description?: string; user: string }): Promise<store.TaskRow> {
    return this.postbox.transaction(async (tx) => {
      const found = await store.lockTask(tx, taskId);
      if (!found) throw noTask(taskId);
      const { task: before, group } = found;
      const renamed = input.name !== undefined && input.name !== before.name;
      const described = input.description !== undefined && input.description !== before.description;
      if (!renamed && !described) return before;
      const at = new Date();
      const task = await store.updateTask(
        tx,
        taskId,
        { name: renamed ? input.name : undefined, description: described ? input.description : undefined },
        at,
      );
      const parts = [
        ...(renamed ? [describe.renamed('Task', before.name, task.name)] : []),
        ...(described ? [describe.descriptionChanged()] : []),
      ];
      await this.record(tx, [{ eventType: 'updated', group: groupRef(group), task, changes: parts.join('; '), user: input.user, at }]);
      return task;
    });
  }

  changeStatus(taskId: string, input: { status: TaskStatus; user: string }): Promise<store.TaskRow> {
    return this.postbox.transaction(async (tx) => {
      const found = await store.lockTask(tx, taskId);
      if (!found) throw noTask(taskId);
      const { task: before, group } = found;
      if (before.status === input.status) return before;
      const at = new Date();
      const task = await store.updateTask(tx, taskId, { status: input.status }, at);
      const changes = describe.status(before.status, task.status);
      await this.record(tx, [{ eventType: 'status_changed', group: groupRef(group), task, changes, user: input.user, at }]);
      return task;
    });
  }

  deleteTask(taskId: string, user: string): Promise<{ taskId: string }> {
    return this.postbox.transaction(async (tx) => {
      const found = await store.lockTask(tx, taskId);
      if (!found) throw noTask(taskId);
      await store.deleteTask(tx, taskId);
      const { task, group } = found;
      const at = new Date();
      await this.record(tx, [
        { eventType: 'deleted', group: groupRef(group), task, changes: describe.deleted('Task', task.name), user, at },
      ]);
      return { taskId };
    });
  }

  addComment(taskId: string, input: { text: string; user: string }): Promise<store.CommentRow> {
    return this.postbox.transaction(async (tx) => {
      const found = await store.lockTask(tx, taskId);
      if (!found) throw noTask(taskId);
      const at = new Date();
      const comment = await store.insertComment(tx, { commentId: randomUUID(), taskId, text: input.text, user: input.user }, at);
      const { task, group } = found;
      await this.record(tx, [
        { eventType: 'commented', group: groupRef(group), task, changes: describe.comment(input.text), user: input.user, at },
      ]);
      return comment;
    });
  }

  async listComments(taskId: string): Promise<store.CommentRow[]> {
    if (!(await store.getTask(this.postbox.db, taskId))) throw noTask(taskId);
    return store.listComments(this.postbox.db, taskId);
  }
}

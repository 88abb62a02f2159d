import type { FastifyInstance } from 'fastify';
import { appDefaults } from '../defaults.js';
import { notFound } from '../errors.js';
import { parseRequest } from '../http/validation.js';
import {
  commentBody,
  createGroupBody,
  createTaskBody,
  isUuid,
  renameGroupBody,
  statusBody,
  updateTaskBody,
  userQuery,
} from './todo-schemas.js';
import type { TodoService } from './todo-service.js';

function id(params: unknown, name: 'groupId' | 'taskId'): string {
  const value = (params as Record<string, string>)[name] ?? '';
  if (!isUuid(value)) throw notFound(`No ${name === 'groupId' ? 'group' : 'task'} has id ${JSON.stringify(value)}.`);
  return value.toLowerCase();
}

/** The todo API: groups, tasks, status changes and comments. */
export function registerTodoRoutes(app: FastifyInstance, todos: TodoService): void {
  app.get('/api/groups', () => todos.listGroups());

  app.post('/api/groups', async (request, reply) => {
    const body = parseRequest(createGroupBody, request.body, 'body');
    const group = await todos.createGroup({ name: body.name, workspace: body.workspace ?? appDefaults.workspace, user: body.user });
    return reply.code(201).send(group);
  });

  app.patch('/api/groups/:groupId', async (request) => {
    const groupId = id(request.params, 'groupId');
    return todos.renameGroup(groupId, parseRequest(renameGroupBody, request.body, 'body'));
  });

  app.delete('/api/groups/:groupId', async (request) => {
    const groupId = id(request.params, 'groupId');
    const { user } = parseRequest(userQuery, request.query, 'query');
    return todos.deleteGroup(groupId, user);
  });

  app.post('/api/groups/:groupId/tasks', async (request, reply) => {
    const groupId = id(request.params, 'groupId');
    const body = parseRequest(createTaskBody, request.body, 'body');
    const task = await todos.createTask(groupId, { name: body.name, description: body.description ?? '', user: body.user });
    return reply.code(201).send(task);
  });

  app.patch('/api/tasks/:taskId', async (request) => {
    const taskId = id(request.params, 'taskId');
    return todos.updateTask(taskId, parseRequest(updateTaskBody, request.body, 'body'));
  });

  app.put('/api/tasks/:taskId/status', async (request) => {
    const taskId = id(request.params, 'taskId');
    return todos.changeStatus(taskId, parseRequest(statusBody, request.body, 'body'));
  });

  app.delete('/api/tasks/:taskId', async (request) => {
    const taskId = id(request.params, 'taskId');
    const { user } = parseRequest(userQuery, request.query, 'query');
    return todos.deleteTask(taskId, user);
  });

  app.get('/api/tasks/:taskId/comments', async (request) => todos.listComments(id(request.params, 'taskId')));

  app.post('/api/tasks/:taskId/comments', async (request, reply) => {
    const taskId = id(request.params, 'taskId');
    const comment = await todos.addComment(taskId, parseRequest(commentBody, request.body, 'body'));
    return reply.code(201).send(comment);
  });
}

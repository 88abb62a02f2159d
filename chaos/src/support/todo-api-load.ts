import type { TaskStatus } from '../../../apps/todo-history/src/todos/todo-schemas.js';
import { taskStatuses } from '../../../apps/todo-history/src/todos/todo-schemas.js';

/** What one request asked for. Every name and text carries the request's token, so its rows can be found without a response. */
export type TodoOperation =
  | { kind: 'create-group'; token: string; name: string }
  | { kind: 'create-task'; token: string; groupId: string; name: string }
  | { kind: 'change-status'; token: string; taskId: string; status: TaskStatus }
  | { kind: 'comment'; token: string; taskId: string; text: string };

/**
 * ok: a 2xx with its body. no-response: the request was sent and the connection failed or timed
 * out (it may or may not have committed). refused: the connection was refused, so nothing reached
 * the app. http-error: any other status.
 */
export type RequestOutcome = 'ok' | 'no-response' | 'refused' | 'http-error';

export interface RequestRecord {
  operation: TodoOperation;
  /** Which start of the app served (or failed) it. */
  incarnation: number;
  outcome: RequestOutcome;
  status?: number;
  body?: Record<string, unknown>;
  error?: string;
  /** performance.now() when the answer (or the failure) came. */
  endedAt: number;
}

export interface AppEndpoint {
  baseUrl: string;
  incarnation: number;
}

const requestTimeoutMs = 10_000;
const user = 'chaos';

function request(operation: TodoOperation): { path: string; method: string; body: unknown } {
  switch (operation.kind) {
    case 'create-group':
      return { path: '/api/groups', method: 'POST', body: { name: operation.name, workspace: 'chaos', user } };
    case 'create-task':
      return { path: `/api/groups/${operation.groupId}/tasks`, method: 'POST', body: { name: operation.name, description: '', user } };
    case 'change-status':
      return { path: `/api/tasks/${operation.taskId}/status`, method: 'PUT', body: { status: operation.status, user } };
    case 'comment':
      return { path: `/api/tasks/${operation.taskId}/comments`, method: 'POST', body: { text: operation.text, user } };
  }
}

function connectionErrorCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

async function send(endpoint: AppEndpoint, operation: TodoOperation): Promise<RequestRecord> {
  const { path, method, body } = request(operation);
  const record = (fields: Omit<RequestRecord, 'operation' | 'incarnation' | 'endedAt'>): RequestRecord => ({
    operation,
    incarnation: endpoint.incarnation,
    endedAt: performance.now(),
    ...fields,
  });
  try {
    const response = await fetch(`${endpoint.baseUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    const text = await response.text();
    const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (response.ok) return record({ outcome: 'ok', status: response.status, body: parsed });
    return record({ outcome: 'http-error', status: response.status, body: parsed });
  } catch (error) {
    const code = connectionErrorCode(error);
    const text = `${error instanceof Error ? error.message : String(error)}${code ? ` (${code})` : ''}`;
    return record({ outcome: code === 'ECONNREFUSED' ? 'refused' : 'no-response', error: text });
  }
}

/**
 * Clients of the todo API: a few workers sending creates, status changes and comments in a loop
 * to whichever start of the app is up, remembering every request and what came back. Requests are
 * only made on groups and tasks whose creation was acknowledged.
 */
export class TodoApiLoad {
  readonly records: RequestRecord[] = [];
  private endpoint: AppEndpoint | undefined;
  private waitingForEndpoint: (() => void)[] = [];
  private running = false;
  private workers: Promise<void>[] = [];
  private sequence = 0;
  private readonly groups: string[] = [];
  private readonly tasks: { taskId: string; status: TaskStatus | undefined }[] = [];

  constructor(private readonly concurrency: number) {}

  /** Sends requests to this app from now on; undefined while it is down. */
  setEndpoint(endpoint: AppEndpoint | undefined): void {
    this.endpoint = endpoint;
    if (endpoint) for (const wake of this.waitingForEndpoint.splice(0)) wake();
  }

  start(): void {
    this.running = true;
    this.workers = Array.from({ length: this.concurrency }, () => this.work());
  }

  /** Stops sending and waits for the requests in flight. */
  async stop(): Promise<void> {
    this.running = false;
    for (const wake of this.waitingForEndpoint.splice(0)) wake();
    await Promise.all(this.workers);
  }

  /** The first acknowledged request served by this start of the app, if any. */
  firstOkOf(incarnation: number): RequestRecord | undefined {
    return this.records.find((record) => record.incarnation === incarnation && record.outcome === 'ok');
  }

  private async work(): Promise<void> {
    while (this.running) {
      const endpoint = this.endpoint;
      if (!endpoint) {
        await new Promise<void>((resolve) => this.waitingForEndpoint.push(resolve));
        continue;
      }
      const operation = this.nextOperation();
      const record = await send(endpoint, operation);
      this.records.push(record);
      if (record.outcome === 'ok') this.learn(record);
      // A refused connection means the app is gone: wait for the next start rather than spin.
      if (record.outcome === 'refused' && this.endpoint === endpoint) this.endpoint = undefined;
    }
  }

  private nextOperation(): TodoOperation {
    const token = `r${++this.sequence}`;
    const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)] as T;
    const roll = Math.random();
    if (this.groups.length < 3 || roll < 0.05) return { kind: 'create-group', token, name: `Group ${token}` };
    if (this.tasks.length < 10 || roll < 0.2) return { kind: 'create-task', token, groupId: pick(this.groups), name: `Task ${token}` };
    const task = pick(this.tasks);
    if (roll < 0.6) {
      const status = pick(taskStatuses.filter((candidate) => candidate !== task.status));
      return { kind: 'change-status', token, taskId: task.taskId, status };
    }
    return { kind: 'comment', token, taskId: task.taskId, text: `Comment ${token}` };
  }

  private learn(record: RequestRecord): void {
    const body = record.body ?? {};
    switch (record.operation.kind) {
      case 'create-group':
        this.groups.push(String(body.groupId));
        break;
      case 'create-task':
        this.tasks.push({ taskId: String(body.taskId), status: body.status as TaskStatus });
        break;
      case 'change-status': {
        const { taskId } = record.operation;
        const task = this.tasks.find((candidate) => candidate.taskId === taskId);
        if (task) task.status = body.status as TaskStatus;
        break;
      }
      case 'comment':
        break;
    }
  }
}

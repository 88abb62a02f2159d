-- The todo board: groups, their tasks and the tasks' comments. Users and workspaces are plain strings.
create table todo_groups (
  group_id uuid primary key,
  name text not null check (name <> ''),
  workspace text not null,
  created_by text not null,
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create table todo_tasks (
  task_id uuid primary key,
  group_id uuid not null references todo_groups (group_id) on delete cascade,
  name text not null check (name <> ''),
  description text not null default '',
  status text not null default 'pending' check (status in ('pending', 'in-progress', 'completed')),
  created_by text not null,
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create index todo_tasks_group_idx on todo_tasks (group_id, created_at);

create table todo_comments (
  comment_id uuid primary key,
  task_id uuid not null references todo_tasks (task_id) on delete cascade,
  text text not null,
  user_name text not null,
  created_at timestamptz not null
);

create index todo_comments_task_idx on todo_comments (task_id, created_at);

-- Dead letters: messages a group gave up on, kept with why, until retried or discarded.
create table postbox.dead_letters (
  id bigint generated always as identity primary key,
  group_name text not null,
  handler text not null,
  source text not null check (source in ('log', 'kafka')),
  message_id text not null,
  topic text not null,
  type text,
  key text,
  -- The decoded payload; null when the message could not be decoded (raw_payload holds it then).
  payload jsonb,
  raw_payload text,
  headers jsonb not null default '{}'::jsonb,
  -- Where it came from: "transaction_id/global_position" on the log, "partition/offset" on Kafka.
  source_position text not null,
  error_code text,
  error_message text not null,
  error_stack text,
  attempts integer not null check (attempts >= 0),
  first_failed_at timestamptz not null,
  last_failed_at timestamptz not null,
  -- pending: waiting for a person; retrying: asked to be redelivered to its group; retried/discarded: done.
  status text not null default 'pending' check (status in ('pending', 'retrying', 'retried', 'discarded')),
  resolved_at timestamptz,
  created_at timestamptz not null default now()
);

-- A redelivered batch that dead-letters the same message again updates the open entry instead of adding one.
create unique index dead_letters_open_key on postbox.dead_letters (group_name, message_id) where status in ('pending', 'retrying');
create index dead_letters_group_status_idx on postbox.dead_letters (group_name, status);

-- The dedupe inbox: message ids a group has handled, kept for a retention window.
create table postbox.inbox (
  group_name text not null,
  message_id text not null,
  processed_at timestamptz not null default now(),
  primary key (group_name, message_id)
);

create index inbox_processed_at_idx on postbox.inbox (processed_at);

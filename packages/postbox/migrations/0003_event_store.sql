-- The event store on the log: a stream is the set of postbox.messages rows with one stream_id.
-- postbox.streams holds each stream's version and state; the append statement checks and advances
-- it in the same statement that inserts the events.
create table postbox.streams (
  stream_id text primary key check (stream_id <> ''),
  -- The prefix before the first '-': the topic its events are logged under.
  category text not null check (category <> ''),
  version bigint not null default 0 check (version >= 0),
  state text not null default 'active' check (state in ('active', 'archived', 'tombstoned')),
  metadata jsonb not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  archived_at timestamptz,
  tombstoned_at timestamptz
);

create index streams_category_idx on postbox.streams (category, stream_id);

-- The latest snapshot of a stream per aggregate (name): state as of `version`.
create table postbox.snapshots (
  stream_id text not null,
  name text not null,
  version bigint not null check (version > 0),
  schema_version integer not null check (schema_version > 0),
  state jsonb not null,
  -- md5 of state::text when written: a snapshot changed behind the library's back is not trusted.
  checksum text not null,
  -- The last event the state includes, for point-in-time loads.
  global_position bigint not null,
  event_created_at timestamptz not null,
  created_at timestamptz not null default now(),
  primary key (stream_id, name)
);

-- Results of handled commands by command id, so that a repeated command returns the first result.
create table postbox.command_results (
  command_id text primary key check (command_id <> ''),
  stream_id text not null,
  command_type text,
  result jsonb not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);

create index command_results_expires_idx on postbox.command_results (expires_at);

-- Projections: what the running processes honour (pause, rebuild) and what they report (failures).
create table postbox.projections (
  name text primary key check (name <> ''),
  categories text[] not null check (cardinality(categories) > 0),
  active_version integer not null default 1 check (active_version > 0),
  -- The version being built beside the active one; null when no rebuild is under way.
  rebuild_version integer check (rebuild_version > 0),
  -- The highest version whose read model has been created.
  prepared_version integer not null default 0,
  paused boolean not null default false,
  faulted boolean not null default false,
  failures integer not null default 0,
  last_error text,
  last_error_at timestamptz,
  rebuild_started_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  status text generated always as (
    case
      when paused then 'stopped'
      when faulted then 'faulted'
      when rebuild_version is not null then 'rebuilding'
      else 'running'
    end
  ) stored
);

-- Checks a stream's expected version and advances it by p_count, returning the version before.
-- p_expected is 'any', 'no_stream', 'stream_exists' or a version in decimal digits. Refusals raise
-- with a SQLSTATE of their own and the stream's state as JSON in the DETAIL.
create function postbox.advance_stream(p_stream_id text, p_category text, p_expected text, p_count integer)
returns bigint
language plpgsql volatile as $$
declare
  v_before bigint;
  v_version bigint;
  v_state text;
begin
  if p_count is null or p_count < 1 then
    raise exception 'POSTBOX_ERR_BAD_OPTION: an append needs at least one event' using errcode = '22023';
  end if;
  if p_expected in ('any', 'no_stream', '0') then
    insert into postbox.streams as s (stream_id, category, version)
    values (p_stream_id, p_category, p_count)
    on conflict (stream_id) do update
      set version = s.version + p_count, updated_at = now()
      where s.state = 'active' and (p_expected = 'any' or s.version = 0)
    returning s.version - p_count into v_before;
  elsif p_expected = 'stream_exists' then
    update postbox.streams s
    set version = s.version + p_count, updated_at = now()
    where s.stream_id = p_stream_id and s.state = 'active' and s.version > 0
    returning s.version - p_count into v_before;
  elsif p_expected ~ '^[0-9]{1,18}$' then
    update postbox.streams s
    set version = s.version + p_count, updated_at = now()
    where s.stream_id = p_stream_id and s.state = 'active' and s.version = p_expected::bigint
    returning s.version - p_count into v_before;
  else
    raise exception 'POSTBOX_ERR_BAD_OPTION: expected version % is not a version, any, no_stream or stream_exists', p_expected
      using errcode = '22023';
  end if;
  if v_before is not null then
    return v_before;
  end if;
  select s.version, s.state into v_version, v_state from postbox.streams s where s.stream_id = p_stream_id;
  if v_state = 'tombstoned' then
    raise exception 'POSTBOX_ERR_STREAM_DELETED: stream % is tombstoned', p_stream_id
      using errcode = 'PBX02', detail = json_build_object('actual', v_version, 'state', v_state)::text;
  elsif v_state = 'archived' then
    raise exception 'POSTBOX_ERR_STREAM_ARCHIVED: stream % is archived', p_stream_id
      using errcode = 'PBX03', detail = json_build_object('actual', v_version, 'state', v_state)::text;
  end if;
  raise exception 'POSTBOX_ERR_CONCURRENCY: stream % is at version %, not %', p_stream_id, coalesce(v_version, 0), p_expected
    using errcode = 'PBX01', detail = json_build_object('actual', coalesce(v_version, 0), 'state', v_state)::text;
end
$$;

-- Reading every stream: all events in (transaction_id, global_position) order below the visibility
-- watermark, on a partial index of stream rows so that plain messages are never scanned.
create index messages_stream_reader_idx on postbox.messages (transaction_id, global_position) where stream_id is not null;

create function postbox.read_all_after(
  p_transaction_id xid8,
  p_position bigint,
  p_limit integer
) returns table (
  global_position bigint,
  transaction_id xid8,
  topic text,
  message_id uuid,
  type text,
  key text,
  payload jsonb,
  headers jsonb,
  stream_id text,
  stream_position bigint,
  created_at timestamptz
)
language plpgsql stable
set enable_seqscan = off
set enable_bitmapscan = off
as $$
#variable_conflict use_column
declare
  watermark xid8 := pg_snapshot_xmin(pg_current_snapshot());
begin
  return query
    select m.global_position, m.transaction_id, m.topic, m.message_id, m.type, m.key,
           m.payload, m.headers, m.stream_id, m.stream_position, m.created_at
    from postbox.messages m
    where m.stream_id is not null
      and (m.transaction_id, m.global_position) > (p_transaction_id, p_position)
      and m.transaction_id < watermark
    order by m.transaction_id, m.global_position
    limit p_limit;
end
$$;

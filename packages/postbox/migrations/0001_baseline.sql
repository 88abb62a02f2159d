-- The Postbox schema: the log, consumer groups, dead letters, the dedupe inbox, the event store and
-- projections. Each table and each function is defined once, here; later migrations change them.
-- A name in double braces is a constant the schema shares with the library's TypeScript
-- (src/config/defaults.ts): the migrator writes its value in when it applies or prints this file.
create schema if not exists postbox;

-- The log: one append-only table that the outbox, consumer groups and event streams share.
create table postbox.messages (
  global_position bigint generated always as identity primary key,
  transaction_id xid8 not null default pg_current_xact_id(),
  topic text not null check (topic <> ''),
  message_id uuid not null,
  type text not null check (type <> ''),
  key text,
  payload jsonb not null,
  headers jsonb not null default '{}'::jsonb check (jsonb_typeof(headers) = 'object'),
  stream_id text,
  stream_position bigint,
  created_at timestamptz not null default now(),
  constraint messages_message_id_key unique (message_id),
  constraint messages_stream_position_key unique (stream_id, stream_position),
  constraint messages_stream_complete check ((stream_id is null) = (stream_position is null))
);

-- The read path of consumer groups: a topic's rows in commit-safe order.
create index messages_reader_idx on postbox.messages (topic, transaction_id, global_position);
-- The read path of every stream's events, a partial index so that plain messages are never scanned.
create index messages_stream_reader_idx on postbox.messages (transaction_id, global_position) where stream_id is not null;

create table postbox.consumer_groups (
  group_name text primary key check (group_name <> ''),
  topics text[] not null check (cardinality(topics) > 0),
  checkpoint_transaction_id xid8 not null default '0',
  checkpoint_position bigint not null default 0,
  -- For groups that start at `latest`: rows of transactions already committed at creation are skipped.
  start_snapshot pg_snapshot,
  ephemeral boolean not null default false,
  lease_owner text,
  lease_expires_at timestamptz,
  status text not null default 'active' check (status in ('active', 'paused')),
  last_error text,
  last_error_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now()
);

create index consumer_groups_ephemeral_idx on postbox.consumer_groups (last_seen_at) where ephemeral;

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
  created_at timestamptz not null default now(),
  -- Why the library itself resolved a dead letter (a rebuilt projection's old version, say); null for
  -- those a person retried or discarded.
  resolution text
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

-- The event store on the log: a stream is the set of postbox.messages rows with one stream_id.
-- postbox.streams holds each stream's version and state; an append checks and advances it in the
-- same call that inserts the events.
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

-- UUIDv7: a 48-bit millisecond timestamp followed by random bits, so ids sort by creation time.
create function postbox.uuid_v7() returns uuid
language sql volatile parallel safe as $$
  select encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
        placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
        from 1 for 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

-- The topics that a process reads now, that is holds the lease of a consumer group reading them:
-- the wake-up rule of postbox.append. As one set, asked once per append.
create function postbox.topics_with_readers() returns setof text
language sql stable as $$
  select distinct t.topic from postbox.consumer_groups g cross join unnest(g.topics) as t(topic) where g.lease_expires_at > now()
$$;

-- The one write to the log: the outbox from TypeScript, postbox.publish from SQL and the events of
-- a stream all insert here. p_rows is a JSON array of messages, each an object with "id", "topic",
-- "type", "key", "payload" and "headers"; one JSON document carries any number of them, and the
-- server parses each payload once, into its jsonb column. The rows are inserted, and take their
-- global positions, in the order of the array.
--
-- With p_stream_id the rows are the next events of that stream: the stream's version is checked
-- against p_expected ('any', 'no_stream', 'stream_exists' or a version in decimal digits) and
-- advanced in the same call, the events are messages on p_category keyed by the stream id (the
-- rows' own topic and key are not read), and they take the stream positions after the version
-- before, which is returned with their global positions. The stream row is created only for 'any',
-- 'no_stream' and 0. A refusal raises through postbox.refuse_append. As one statement the append is
-- atomic with or without the caller's transaction, and PL/pgSQL keeps its plans per connection.
--
-- It wakes readers by one rule: a NOTIFY per topic, sent only when a consumer group reading the
-- topic holds a live lease, that is when a process is there to be woken. PostgreSQL serialises the
-- commits of all notifying transactions of the whole server, so a NOTIFY nobody waits for would
-- still make the append queue behind every other notifying commit. Readers lose nothing: a NOTIFY
-- is only a wake-up, and a group that takes its lease reads at once and polls after. The NOTIFY is
-- delivered when the caller's transaction commits, and not at all when it rolls back.
create function postbox.append(
  p_rows jsonb,
  p_stream_id text default null,
  p_category text default null,
  p_expected text default null,
  out previous_version bigint,
  out global_positions bigint[]
)
language plpgsql volatile
-- With custom plans, the planner would see the statement below's parameters as constants and prune
-- it, and find the one generic plan costlier than its pruned plans: it would then plan the statement
-- anew on every call, which costs more than running it. The generic plan is the same work.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_count integer := jsonb_array_length(p_rows);
  v_woken bigint;
begin
  if p_stream_id is not null and v_count < 1 then
    raise exception 'POSTBOX_ERR_BAD_OPTION: an append needs at least one event' using errcode = '22023';
  end if;
  if p_stream_id is not null and p_expected not in ('any', 'no_stream', 'stream_exists') and p_expected !~ '^[0-9]{1,18}$' then
    raise exception 'POSTBOX_ERR_BAD_OPTION: expected version % is not a version, any, no_stream or stream_exists', p_expected
      using errcode = '22023';
  end if;
  if p_stream_id is not null then
    insert into postbox.streams as s (stream_id, category, version)
    select p_stream_id, p_category, v_count
    where p_expected in ('any', 'no_stream', '0') or exists (select from postbox.streams x where x.stream_id = p_stream_id)
    on conflict (stream_id) do update set version = s.version + v_count, updated_at = now()
    where s.state = 'active' and case p_expected
        when 'any' then true
        when 'stream_exists' then s.version > 0
        when 'no_stream' then s.version = 0
        else s.version = p_expected::bigint
      end
    returning s.version - v_count into previous_version;
    previous_version := coalesce(previous_version, postbox.refuse_append(p_stream_id, p_expected));
  end if;
  -- The rows inserted and the wake-ups sent in one statement, one run of the executor.
  with inserted as (
    insert into postbox.messages (message_id, topic, type, key, payload, headers, stream_id, stream_position)
    select (e.message ->> 'id')::uuid, coalesce(p_category, e.message ->> 'topic'), e.message ->> 'type',
           coalesce(p_stream_id, e.message ->> 'key'), e.message -> 'payload', e.message -> 'headers', p_stream_id, previous_version + e.ord
    from jsonb_array_elements(p_rows) with ordinality as e(message, ord)
    returning global_position, topic
  )
  select case when p_stream_id is not null then array_agg(i.global_position order by i.global_position) end,
         -- The events of a stream share one topic, asked about once. Plain messages are asked about
         -- row by row, and PostgreSQL delivers one of a transaction's identical notifications:
         -- building the set of their topics would cost more for the usual batch of one topic.
         case when p_stream_id is not null
           then (select count(pg_notify('{{notifyChannel}}', p_category)) where p_category in (select t.topic from postbox.topics_with_readers() as t(topic)))
           else count(pg_notify('{{notifyChannel}}', i.topic)) filter (where i.topic in (select t.topic from postbox.topics_with_readers() as t(topic)))
         end
  into global_positions, v_woken
  from inserted i;
end
$$;

-- Length in UTF-16 code units, as JavaScript counts: a character outside the Basic Multilingual
-- Plane counts twice.
create function postbox.utf16_length(p_value text) returns integer
language sql immutable strict as $$
  select length(p_value) + length(regexp_replace(p_value, '[^\U00010000-\U0010FFFF]', '', 'g'))
$$;

-- The rules of a topic, type or key, as the TypeScript API checks them: not blank (JavaScript's
-- trim() whitespace), not too long, and not starting with U+FEFF, which embedded PGlite drops when
-- it reads text back.
create function postbox.check_message_name(p_field text, p_value text, p_max integer, p_blank_code text)
returns void
language plpgsql immutable as $$
begin
  -- Exactly the characters String.prototype.trim() removes, whatever the server's locale calls space.
  if p_value is null or p_value ~ '^[\u0009-\u000d\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*$' then
    raise exception '%: % must be a non-empty string', p_blank_code, p_field using errcode = '22023';
  end if;
  if postbox.utf16_length(p_value) > p_max then
    raise exception 'POSTBOX_ERR_BAD_NAME: % is longer than % characters', p_field, p_max using errcode = '22023';
  end if;
  if left(p_value, 1) = U&'\FEFF' then
    raise exception 'POSTBOX_ERR_BAD_NAME: % starts with U+FEFF (a byte-order mark), which embedded PGlite drops when reading', p_field
      using errcode = '22023';
  end if;
end
$$;

-- The headers as the TypeScript API writes them: string values, a positive integer schemaVersion
-- (the default version when absent), and a bounded number of custom names of bounded length.
create function postbox.checked_headers(p_headers jsonb) returns jsonb
language plpgsql immutable as $$
declare
  v_name text;
  v_value jsonb;
  v_custom integer := 0;
  v_version numeric;
begin
  if p_headers is null or jsonb_typeof(p_headers) <> 'object' then
    raise exception 'POSTBOX_ERR_BAD_HEADER: headers must be a JSON object' using errcode = '22023';
  end if;
  for v_name, v_value in select e.key, e.value from jsonb_each(p_headers) as e loop
    if v_name = '' or postbox.utf16_length(v_name) > {{maxNameLength}} then
      raise exception 'POSTBOX_ERR_BAD_HEADER: header name % must be 1 to {{maxNameLength}} characters', to_json(left(v_name, 60))
        using errcode = '22023';
    end if;
    if v_name = '__proto__' then
      raise exception 'POSTBOX_ERR_BAD_HEADER: header "__proto__" is not allowed as a header name' using errcode = '22023';
    end if;
    if v_name = 'schemaVersion' then
      v_version := case when jsonb_typeof(v_value) = 'number' then (v_value #>> '{}')::numeric end;
      if v_version is null or v_version < 1 or v_version > 9007199254740991 or v_version <> trunc(v_version) then
        raise exception 'POSTBOX_ERR_BAD_HEADER: header "schemaVersion" must be a positive integer (got %)', left(v_value::text, 60)
          using errcode = '22023';
      end if;
      continue;
    end if;
    if v_name not in ('traceId', 'correlationId', 'causationId', 'userId') then
      v_custom := v_custom + 1;
    end if;
    if jsonb_typeof(v_value) <> 'string' then
      raise exception 'POSTBOX_ERR_BAD_HEADER: header % must be a string (got %)', to_json(left(v_name, 60)), jsonb_typeof(v_value)
        using errcode = '22023';
    end if;
    if postbox.utf16_length(v_value #>> '{}') > {{maxHeaderValueLength}} then
      raise exception 'POSTBOX_ERR_BAD_HEADER: header % is longer than {{maxHeaderValueLength}} characters', to_json(left(v_name, 60))
        using errcode = '22023';
    end if;
  end loop;
  if v_custom > {{maxHeaderCount}} then
    raise exception 'POSTBOX_ERR_BAD_HEADER: headers has more than {{maxHeaderCount}} entries' using errcode = '22023';
  end if;
  if p_headers ? 'schemaVersion' then
    return p_headers;
  end if;
  return p_headers || '{"schemaVersion": {{schemaVersion}}}'::jsonb;
end
$$;

-- The outbox from any language: call it inside the business transaction. It refuses what the
-- TypeScript API refuses, with the same codes. The payload's size is not checked here: its limit is
-- a setting of each Postbox instance.
create function postbox.publish(
  topic text,
  type text,
  payload jsonb,
  key text default null,
  headers jsonb default '{}'::jsonb
) returns uuid
language plpgsql volatile as $$
#variable_conflict use_variable
declare
  new_id uuid := postbox.uuid_v7();
begin
  perform postbox.check_message_name('topic', topic, {{maxNameLength}}, 'POSTBOX_ERR_EMPTY_TOPIC');
  perform postbox.check_message_name('type', type, {{maxNameLength}}, 'POSTBOX_ERR_EMPTY_TYPE');
  if key is not null then
    perform postbox.check_message_name('key', key, {{maxKeyLength}}, 'POSTBOX_ERR_BAD_NAME');
  end if;
  if payload is null then
    raise exception 'POSTBOX_ERR_PAYLOAD_NOT_JSON: payload must be a JSON value, not SQL NULL' using errcode = '22023';
  end if;
  perform from postbox.append(jsonb_build_array(jsonb_build_object(
    'id', new_id, 'topic', topic, 'type', type, 'key', key, 'payload', payload, 'headers', postbox.checked_headers(headers))));
  return new_id;
end
$$;

-- Why an append was refused: raises the error for a version check that found nothing to advance,
-- with a SQLSTATE of its own (PBX01 concurrency, PBX02 tombstoned, PBX03 archived) and the stream's
-- state as JSON in the DETAIL.
create function postbox.refuse_append(p_stream_id text, p_expected text)
returns bigint
language plpgsql volatile as $$
declare
  v_version bigint;
  v_state text;
begin
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

-- The one read of the log: committed rows after a position, in (transaction_id, global_position)
-- order and only below the visibility watermark, so that a transaction which commits late is read
-- later rather than skipped. It reads the rows of some topics (a consumer group), or with no topics
-- the events of every stream. Rows of transactions visible in p_skip_visible_in are left out (a
-- `latest` group's start). The SET clauses keep the plan on the indexes even before the table has
-- statistics.
create function postbox.read_after(
  p_topics text[],
  p_transaction_id xid8,
  p_position bigint,
  p_limit integer,
  p_skip_visible_in pg_snapshot default null
) returns setof postbox.messages
language plpgsql stable
set enable_seqscan = off
set enable_bitmapscan = off
as $$
declare
  watermark xid8 := pg_snapshot_xmin(pg_current_snapshot());
begin
  if p_topics is null then
    return query
      select m.* from postbox.messages m
      where m.stream_id is not null
        and (m.transaction_id, m.global_position) > (p_transaction_id, p_position)
        and m.transaction_id < watermark
        and (p_skip_visible_in is null or not pg_visible_in_snapshot(m.transaction_id, p_skip_visible_in))
      order by m.transaction_id, m.global_position
      limit p_limit;
  elsif cardinality(p_topics) = 1 then
    return query
      select m.* from postbox.messages m
      where m.topic = p_topics[1]
        and (m.transaction_id, m.global_position) > (p_transaction_id, p_position)
        and m.transaction_id < watermark
        and (p_skip_visible_in is null or not pg_visible_in_snapshot(m.transaction_id, p_skip_visible_in))
      order by m.transaction_id, m.global_position
      limit p_limit;
  else
    -- One index range per topic, merged: the planner keeps each on the index.
    return query
      select m.* from unnest(p_topics) as t(name)
      cross join lateral (
        select x.* from postbox.messages x
        where x.topic = t.name
          and (x.transaction_id, x.global_position) > (p_transaction_id, p_position)
          and x.transaction_id < watermark
          and (p_skip_visible_in is null or not pg_visible_in_snapshot(x.transaction_id, p_skip_visible_in))
        order by x.transaction_id, x.global_position
        limit p_limit
      ) m
      order by m.transaction_id, m.global_position
      limit p_limit;
  end if;
end
$$;

-- How far a reader is behind: how many rows of some topics come after a position (leaving out those
-- of transactions visible in p_skip_visible_in), and when the oldest of them was written. Unlike
-- read_after it also counts rows above the visibility watermark, which the reader will read as
-- soon as they are below it.
create function postbox.backlog(
  p_topics text[],
  p_transaction_id xid8,
  p_position bigint,
  p_skip_visible_in pg_snapshot default null
) returns table (messages bigint, oldest timestamptz)
language sql stable as $$
  select count(*), min(m.created_at)
  from postbox.messages m
  where m.topic = any(p_topics)
    and (m.transaction_id, m.global_position) > (p_transaction_id, p_position)
    and (p_skip_visible_in is null or not pg_visible_in_snapshot(m.transaction_id, p_skip_visible_in))
$$;

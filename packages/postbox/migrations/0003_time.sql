-- Time: messages written now that enter the log later, and recurring schedules. The timekeeper, one
-- process per database at a time (the holder of the `{{timekeeperLease}}` lease), moves each into the
-- log when it falls due, through postbox.append like every other message.

-- Named leases: one process at a time holds each, until it hands it back or the lease runs out.
-- wake_at is when the holder next looks on its own: a writer with work due sooner wakes it.
create table postbox.leases (
  name text primary key check (name <> ''),
  owner text,
  expires_at timestamptz,
  acquired_at timestamptz,
  wake_at timestamptz,
  updated_at timestamptz not null default now()
);

-- Messages waiting for their time, whole, with the id they keep in the log.
create table postbox.scheduled_messages (
  message_id uuid primary key,
  -- The order they were written: of messages due at the same time, the first written moves first.
  seq bigint generated always as identity,
  topic text not null check (topic <> ''),
  type text not null check (type <> ''),
  key text,
  payload jsonb not null,
  headers jsonb not null default '{}'::jsonb check (jsonb_typeof(headers) = 'object'),
  due_at timestamptz not null,
  created_at timestamptz not null default now()
);

-- The order of moving, and the timekeeper's question "when is the next one due".
create index scheduled_messages_due_idx on postbox.scheduled_messages (due_at, seq);

-- Recurring messages: a cron expression read in an IANA time zone, and the message each tick appends.
create table postbox.schedules (
  name text primary key check (name <> ''),
  cron text not null check (cron <> ''),
  time_zone text not null check (time_zone <> ''),
  topic text not null check (topic <> ''),
  type text not null check (type <> ''),
  key text,
  payload jsonb not null,
  headers jsonb not null default '{}'::jsonb check (jsonb_typeof(headers) = 'object'),
  -- What a timekeeper that finds ticks long past does: append none, the latest, or each of them.
  missed text not null default 'skip' check (missed in ('skip', 'last', 'all')),
  status text not null default 'active' check (status in ('active', 'paused')),
  -- The earliest tick not yet appended; null once the expression has no tick left.
  next_tick_at timestamptz,
  last_tick_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index schedules_due_idx on postbox.schedules (next_tick_at) where status = 'active';

-- Wakes the timekeeper when p_due comes before it next looks on its own. As postbox.append does for
-- readers, it notifies only when a process holds the lease and is there to be woken; the NOTIFY is
-- delivered when the caller's transaction commits, and not at all when it rolls back.
create function postbox.wake_timekeeper(p_due timestamptz) returns void
language plpgsql volatile as $$
begin
  perform pg_notify('{{timekeeperChannel}}', '')
  from postbox.leases l
  where l.name = '{{timekeeperLease}}' and l.expires_at > now() and (l.wake_at is null or l.wake_at > p_due);
end
$$;

-- The one write of scheduled messages, from TypeScript and from postbox.publish_at. p_rows is a JSON
-- array of messages as postbox.append reads them, each with either "due_at" (a timestamp) or
-- "delay_ms" (milliseconds after the server's clock as the row is written). An id already in the log
-- is refused as postbox.append would refuse it; one already waiting, by the primary key.
create function postbox.schedule_messages(p_rows jsonb) returns void
language plpgsql volatile as $$
declare
  v_taken uuid;
  v_first timestamptz;
begin
  select m.message_id into v_taken
  from jsonb_array_elements(p_rows) as e(message)
  join postbox.messages m on m.message_id = (e.message ->> 'id')::uuid
  limit 1;
  if v_taken is not null then
    raise exception 'POSTBOX_ERR_DUPLICATE_ID: the log already holds a message with id %', v_taken
      using errcode = '23505', constraint = 'messages_message_id_key', detail = format('Key (message_id)=(%s) already exists.', v_taken);
  end if;
  with inserted as (
    insert into postbox.scheduled_messages (message_id, topic, type, key, payload, headers, due_at)
    select (e.message ->> 'id')::uuid, e.message ->> 'topic', e.message ->> 'type', e.message ->> 'key', e.message -> 'payload',
           e.message -> 'headers',
           coalesce((e.message ->> 'due_at')::timestamptz, clock_timestamp() + (e.message ->> 'delay_ms')::numeric * interval '1 millisecond')
    from jsonb_array_elements(p_rows) with ordinality as e(message, ord)
    order by e.ord
    returning due_at
  )
  select min(i.due_at) into v_first from inserted i;
  if v_first is not null then
    perform postbox.wake_timekeeper(v_first);
  end if;
end
$$;

-- The one write to the log, as in 0001, and with p_skip_existing: messages whose id the log already
-- holds are left out rather than refused, and global_positions holds the positions of those appended.
-- The timekeeper appends with it, so a message moved or a tick appended twice (two holders racing
-- over a lease that ran out) is in the log once. Two appends of one id at the very same time still
-- meet the unique index: the later waits for the first and fails, and its transaction is retried.
drop function postbox.append(jsonb, text, text, text);
create function postbox.append(
  p_rows jsonb,
  p_stream_id text default null,
  p_category text default null,
  p_expected text default null,
  p_skip_existing boolean default false,
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
  v_existing uuid[];
begin
  if p_stream_id is not null and p_skip_existing then
    raise exception 'POSTBOX_ERR_BAD_OPTION: the events of a stream are never appended with p_skip_existing' using errcode = '22023';
  end if;
  if p_stream_id is not null and v_count < 1 then
    raise exception 'POSTBOX_ERR_BAD_OPTION: an append needs at least one event' using errcode = '22023';
  end if;
  if p_stream_id is not null and p_expected not in ('any', 'no_stream', 'stream_exists') and p_expected !~ '^[0-9]{1,18}$' then
    raise exception 'POSTBOX_ERR_BAD_OPTION: expected version % is not a version, any, no_stream or stream_exists', p_expected
      using errcode = '22023';
  end if;
  if p_skip_existing then
    -- One probe of the unique index for all the ids; the rows are rebuilt only when some are taken.
    select array_agg(m.message_id) into v_existing
    from postbox.messages m
    where m.message_id = any (array(select (e.message ->> 'id')::uuid from jsonb_array_elements(p_rows) as e(message)));
    if v_existing is not null then
      select coalesce(jsonb_agg(e.message order by e.ord), '[]'::jsonb) into p_rows
      from jsonb_array_elements(p_rows) with ordinality as e(message, ord)
      where (e.message ->> 'id')::uuid <> all (v_existing);
    end if;
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
  select case when p_stream_id is not null or p_skip_existing then coalesce(array_agg(i.global_position order by i.global_position), '{}') end,
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

-- Moves up to p_limit due messages into the log in one statement's transaction: deleted from
-- postbox.scheduled_messages and appended with their ids, in the order they fell due and, at one
-- time, the order they were written. A mover that dies before its commit has moved nothing; one that
-- commits has moved each row once. Rows another transaction has locked (a cancel not yet committed)
-- are left for the next move. An id the log already holds is not appended again: `skipped` counts them.
--
-- A moved message is written by the mover's transaction: readers order it by that transaction's id,
-- after every message committed before the move, as if it had been published at the moment it moved.
create function postbox.move_due_messages(p_limit integer, out moved integer, out skipped integer)
language plpgsql volatile as $$
declare
  v_rows jsonb;
  v_count integer;
  v_positions bigint[];
begin
  with due as (
    delete from postbox.scheduled_messages s
    -- An array, so that the rows are found by their key rather than by a scan of the whole table.
    where s.message_id = any (array(
      select d.message_id from postbox.scheduled_messages d
      where d.due_at <= now()
      order by d.due_at, d.seq
      limit p_limit
      for update skip locked
    ))
    returning s.message_id, s.topic, s.type, s.key, s.payload, s.headers, s.due_at, s.seq
  )
  select jsonb_agg(
           jsonb_build_object('id', d.message_id, 'topic', d.topic, 'type', d.type, 'key', d.key, 'payload', d.payload, 'headers', d.headers)
           order by d.due_at, d.seq),
         count(*)
  into v_rows, v_count
  from due d;
  moved := 0;
  skipped := 0;
  if v_count = 0 then
    return;
  end if;
  select a.global_positions into v_positions from postbox.append(v_rows, p_skip_existing => true) a;
  moved := cardinality(v_positions);
  skipped := v_count - moved;
end
$$;

-- A message as postbox.publish and postbox.publish_at take it, checked as the TypeScript API checks
-- it, as the JSON object postbox.append reads.
create function postbox.checked_message(p_id uuid, p_topic text, p_type text, p_payload jsonb, p_key text, p_headers jsonb)
returns jsonb
language plpgsql volatile as $$
begin
  perform postbox.check_message_name('topic', p_topic, {{maxNameLength}}, 'POSTBOX_ERR_EMPTY_TOPIC');
  perform postbox.check_message_name('type', p_type, {{maxNameLength}}, 'POSTBOX_ERR_EMPTY_TYPE');
  if p_key is not null then
    perform postbox.check_message_name('key', p_key, {{maxKeyLength}}, 'POSTBOX_ERR_BAD_NAME');
  end if;
  if p_payload is null then
    raise exception 'POSTBOX_ERR_PAYLOAD_NOT_JSON: payload must be a JSON value, not SQL NULL' using errcode = '22023';
  end if;
  return jsonb_build_object(
    'id', p_id, 'topic', p_topic, 'type', p_type, 'key', p_key, 'payload', p_payload, 'headers', postbox.checked_headers(p_headers));
end
$$;

-- The outbox from any language, as in 0001, its checks now shared with postbox.publish_at.
create or replace function postbox.publish(
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
  perform from postbox.append(jsonb_build_array(postbox.checked_message(new_id, topic, type, payload, key, headers)));
  return new_id;
end
$$;

-- The outbox with a delivery time, from any language: inside the business transaction, like
-- postbox.publish. The message enters the log once deliver_at has passed (a time already past means
-- at once); for a delay, pass now() + interval '15 minutes'. Returns the id it will have in the log.
create function postbox.publish_at(
  topic text,
  type text,
  payload jsonb,
  deliver_at timestamptz,
  key text default null,
  headers jsonb default '{}'::jsonb
) returns uuid
language plpgsql volatile as $$
#variable_conflict use_variable
declare
  new_id uuid := postbox.uuid_v7();
begin
  if deliver_at is null or not isfinite(deliver_at) or deliver_at < '0001-01-01T00:00:00Z'::timestamptz then
    raise exception 'POSTBOX_ERR_BAD_DELIVERY_TIME: deliver_at must be a time from the year 1 on (got %)', coalesce(deliver_at::text, 'NULL')
      using errcode = '22023';
  end if;
  perform postbox.schedule_messages(jsonb_build_array(
    postbox.checked_message(new_id, topic, type, payload, key, headers) || jsonb_build_object('due_at', deliver_at)));
  return new_id;
end
$$;

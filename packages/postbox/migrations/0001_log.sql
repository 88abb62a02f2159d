-- The log: one append-only table that the outbox, consumer groups and event streams share.
create schema if not exists postbox;

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

-- The one read path: a topic's rows in commit-safe order.
create index messages_reader_idx on postbox.messages (topic, transaction_id, global_position);

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

-- The outbox from any language: call it inside the business transaction.
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
  if topic is null or topic = '' then
    raise exception 'POSTBOX_ERR_EMPTY_TOPIC: a message needs a non-empty topic' using errcode = '22023';
  end if;
  if type is null or type = '' then
    raise exception 'POSTBOX_ERR_EMPTY_TYPE: a message needs a non-empty type' using errcode = '22023';
  end if;
  if payload is null then
    raise exception 'POSTBOX_ERR_PAYLOAD_NOT_JSON: payload must be a JSON value, not SQL NULL' using errcode = '22023';
  end if;
  if headers is null or jsonb_typeof(headers) <> 'object' then
    raise exception 'POSTBOX_ERR_BAD_HEADER: headers must be a JSON object' using errcode = '22023';
  end if;
  insert into postbox.messages (message_id, topic, type, key, payload, headers)
  values (new_id, topic, type, key, payload, headers);
  perform pg_notify('postbox', topic);
  return new_id;
end
$$;

-- The one read path for consumers. Rows come in (transaction_id, global_position) order and only
-- below the visibility watermark, so a transaction that commits late is never skipped. The SET
-- clauses keep the plan on messages_reader_idx even before the table has statistics.
create function postbox.read_after(
  p_topics text[],
  p_transaction_id xid8,
  p_position bigint,
  p_limit integer,
  p_skip_visible_in pg_snapshot default null
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
  if cardinality(p_topics) = 1 then
    return query
      select m.global_position, m.transaction_id, m.topic, m.message_id, m.type, m.key,
             m.payload, m.headers, m.stream_id, m.stream_position, m.created_at
      from postbox.messages m
      where m.topic = p_topics[1]
        and (m.transaction_id, m.global_position) > (p_transaction_id, p_position)
        and m.transaction_id < watermark
        and (p_skip_visible_in is null or not pg_visible_in_snapshot(m.transaction_id, p_skip_visible_in))
      order by m.transaction_id, m.global_position
      limit p_limit;
  else
    return query
      select m.global_position, m.transaction_id, m.topic, m.message_id, m.type, m.key,
             m.payload, m.headers, m.stream_id, m.stream_position, m.created_at
      from unnest(p_topics) as t(name)
      cross join lateral (
        select * from postbox.messages x
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

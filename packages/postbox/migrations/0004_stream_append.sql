-- Appending to a stream is one call of one function: it checks and advances the stream's version
-- (postbox.advance_stream), inserts the events into the log through the same table and indexes as
-- every outbox message, and queues a NOTIFY for the category. As a single statement it is atomic
-- with or without the caller's transaction, and PL/pgSQL keeps its plans per connection, so an
-- append inside a caller's transaction is not planned again each time either.
-- Every event of a stream is a message on the stream's category topic, keyed by the stream id, so
-- those two travel once per call rather than once per event.
-- The wake-up NOTIFY is sent only when a consumer group reading the category holds a lease, that is
-- when a process is there to be woken. PostgreSQL serialises the commits of all notifying
-- transactions of the whole server (queue entries must appear in commit order), so a NOTIFY nobody
-- waits for still makes the append queue behind every other notifying commit. Readers lose nothing:
-- a NOTIFY is only a wake-up, and a group that takes its lease reads at once and polls after.
create function postbox.append_to_stream(
  p_stream_id text,
  p_category text,
  p_expected text,
  p_message_ids uuid[],
  p_types text[],
  p_payloads jsonb[],
  p_headers jsonb[],
  p_channel text,
  out previous_version bigint,
  out global_positions bigint[],
  out transaction_id xid8,
  out created_at timestamptz
)
language plpgsql volatile as $$
begin
  if cardinality(p_types) is distinct from cardinality(p_message_ids)
     or cardinality(p_payloads) is distinct from cardinality(p_message_ids)
     or cardinality(p_headers) is distinct from cardinality(p_message_ids) then
    raise exception 'POSTBOX_ERR_BAD_OPTION: ids, types, payloads and headers must have one entry per event' using errcode = '22023';
  end if;
  previous_version := postbox.advance_stream(p_stream_id, p_category, p_expected, cardinality(p_message_ids));
  with inserted as (
    insert into postbox.messages (message_id, topic, type, key, payload, headers, stream_id, stream_position)
    select e.message_id, p_category, e.type, p_stream_id, e.payload, e.headers, p_stream_id, previous_version + e.ord
    from unnest(p_message_ids, p_types, p_payloads, p_headers) with ordinality as e(message_id, type, payload, headers, ord)
    order by e.ord
    returning postbox.messages.global_position, postbox.messages.stream_position
  )
  select array_agg(i.global_position order by i.stream_position) into global_positions from inserted i;
  if exists (
    select 1 from postbox.consumer_groups g
    where p_category = any(g.topics) and g.lease_expires_at > now()
  ) then
    perform pg_notify(p_channel, p_category);
  end if;
  transaction_id := pg_current_xact_id();
  -- The column default of created_at: the transaction's start.
  created_at := now();
end
$$;

-- The same append as 0004's postbox.append_to_stream, taking the events' ids, types, payloads and
-- headers as four JSON arrays instead of four PostgreSQL arrays. A client writes a JSON array by
-- joining the JSON it already holds, where an array literal must escape every quote of every
-- payload, and the server parses each payload once, into its jsonb column, instead of first
-- splitting an array literal. Headers may also come as one JSON object that every event carries,
-- parsed once: the usual append, whose events differ only in their payloads. 0004's signature stays
-- for processes of the previous release.
create function postbox.append_to_stream(
  p_stream_id text,
  p_category text,
  p_expected text,
  p_message_ids json,
  p_types json,
  p_payloads json,
  p_headers json,
  p_channel text,
  out previous_version bigint,
  out global_positions bigint[],
  out transaction_id xid8,
  out created_at timestamptz
)
language plpgsql volatile as $$
declare
  v_count integer;
  v_shared_headers jsonb;
  v_notify boolean;
begin
  if json_typeof(p_message_ids) is distinct from 'array' or json_typeof(p_types) is distinct from 'array'
     or json_typeof(p_payloads) is distinct from 'array' or json_typeof(p_headers) not in ('array', 'object') then
    raise exception 'POSTBOX_ERR_BAD_OPTION: ids, types and payloads must be JSON arrays, headers a JSON array or object' using errcode = '22023';
  end if;
  if json_typeof(p_headers) = 'object' then
    v_shared_headers := p_headers::jsonb;
  end if;
  -- Only the ids' array is measured: counting the payloads would lex all of them a second time. An
  -- array of another length still fails, since rows from() fills the missing entries with nulls and
  -- every one of those columns is not null.
  v_count := json_array_length(p_message_ids);
  previous_version := postbox.advance_stream(p_stream_id, p_category, p_expected, v_count);
  with inserted as (
    insert into postbox.messages (message_id, topic, type, key, payload, headers, stream_id, stream_position)
    select e.message_id::uuid, p_category, e.type, p_stream_id, e.payload::jsonb, coalesce(v_shared_headers, e.headers::jsonb),
           p_stream_id, previous_version + e.ord
    from rows from (
      json_array_elements_text(p_message_ids), json_array_elements_text(p_types), json_array_elements(p_payloads),
      json_array_elements(case when v_shared_headers is null then p_headers else '[]' end)
    ) with ordinality as e(message_id, type, payload, headers, ord)
    order by e.ord
    returning postbox.messages.global_position, postbox.messages.stream_position
  )
  -- Whether a leased reader waits is asked in the same statement: one statement fewer per append.
  select array_agg(i.global_position order by i.stream_position),
         exists (select 1 from postbox.consumer_groups g where p_category = any(g.topics) and g.lease_expires_at > now())
  into global_positions, v_notify
  from inserted i;
  if v_notify then
    perform pg_notify(p_channel, p_category);
  end if;
  transaction_id := pg_current_xact_id();
  -- The column default of created_at: the transaction's start.
  created_at := now();
end
$$;

-- Why an append was refused, as its own function: postbox.refuse_append raises the error that
-- postbox.advance_stream raised after a version check found nothing to advance. A single-event
-- append from the library checks the version and inserts its event in one plain statement, which
-- calls this only when the check fails, so the refusal reads the same from every path: the
-- SQLSTATE (PBX01 concurrency, PBX02 tombstoned, PBX03 archived) and the stream's state as JSON in
-- the DETAIL. advance_stream is redefined to end in the same call, with its checks unchanged.
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

create or replace function postbox.advance_stream(p_stream_id text, p_category text, p_expected text, p_count integer)
returns bigint
language plpgsql volatile as $$
declare
  v_before bigint;
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
  return coalesce(v_before, postbox.refuse_append(p_stream_id, p_expected));
end
$$;

-- postbox.publish() refuses what the TypeScript API refuses, so that a message written from SQL
-- reads like one written from TypeScript. Until now it refused only empty names and headers that
-- are not an object: a blank topic, an over-long key or a numeric trace id went into the log.
-- The limits are those of the library's defaults (maxNameLength 200, maxKeyLength 1,000,
-- maxHeaderCount 64, maxHeaderValueLength 4,000), and lengths count UTF-16 code units as
-- JavaScript does. A message without a schemaVersion header gets version 1, as from TypeScript.
-- The payload's size is not checked here: its limit is a setting of each Postbox instance.

-- Length in UTF-16 code units: a character outside the Basic Multilingual Plane counts twice.
create function postbox.utf16_length(p_value text) returns integer
language sql immutable strict as $$
  select length(p_value) + length(regexp_replace(p_value, '[^\U00010000-\U0010FFFF]', '', 'g'))
$$;

-- The rules of a topic, type or key: not blank (JavaScript's trim() whitespace), not too long, and
-- not starting with U+FEFF, which embedded PGlite drops when it reads text back.
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
-- (1 when absent), at most 64 custom names of 1 to 200 characters.
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
    if v_name = '' or postbox.utf16_length(v_name) > 200 then
      raise exception 'POSTBOX_ERR_BAD_HEADER: header name % must be 1 to 200 characters', to_json(left(v_name, 60))
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
    if postbox.utf16_length(v_value #>> '{}') > 4000 then
      raise exception 'POSTBOX_ERR_BAD_HEADER: header % is longer than 4000 characters', to_json(left(v_name, 60))
        using errcode = '22023';
    end if;
  end loop;
  if v_custom > 64 then
    raise exception 'POSTBOX_ERR_BAD_HEADER: headers has more than 64 entries' using errcode = '22023';
  end if;
  if p_headers ? 'schemaVersion' then
    return p_headers;
  end if;
  return p_headers || '{"schemaVersion": 1}'::jsonb;
end
$$;

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
  stored_headers jsonb;
begin
  perform postbox.check_message_name('topic', topic, 200, 'POSTBOX_ERR_EMPTY_TOPIC');
  perform postbox.check_message_name('type', type, 200, 'POSTBOX_ERR_EMPTY_TYPE');
  if key is not null then
    perform postbox.check_message_name('key', key, 1000, 'POSTBOX_ERR_BAD_NAME');
  end if;
  if payload is null then
    raise exception 'POSTBOX_ERR_PAYLOAD_NOT_JSON: payload must be a JSON value, not SQL NULL' using errcode = '22023';
  end if;
  stored_headers := postbox.checked_headers(headers);
  insert into postbox.messages (message_id, topic, type, key, payload, headers)
  values (new_id, topic, type, key, payload, stored_headers);
  perform pg_notify('postbox', topic);
  return new_id;
end
$$;

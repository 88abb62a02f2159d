-- Parked messages. A route with `park` takes a message that still fails after its quick attempts
-- out of its batch, with the time of its next attempt, and its group's checkpoint moves on. The later
-- messages of its key in that group wait here behind it, unattempted, and are handled in log order
-- once it has been (or once it went to dead letters, as the route says). Other keys never wait.
--
-- Each row is a whole copy of its message, so retention of the log cannot take what a parked row
-- needs. A key's rows, in log order, are its queue: only the first is ever attempted, at its
-- next_attempt_at; the rows behind it get a time when they come first (postbox.promote_parked).
-- The group's partition that owns a row is postbox.partition_of(bucket, partitions), as for the
-- message itself, so parked state follows its partition from member to member.
create table postbox.parked_messages (
  id bigint generated always as identity primary key,
  group_name text not null references postbox.consumer_groups (group_name) on delete cascade,
  handler text not null,
  message_id text not null,
  topic text not null,
  type text not null,
  key text,
  bucket smallint not null check (bucket >= 0 and bucket < {{partitionBuckets}}),
  payload jsonb not null,
  headers jsonb not null default '{}'::jsonb check (jsonb_typeof(headers) = 'object'),
  -- The message's place in the log: the order of a key's rows.
  transaction_id xid8 not null,
  global_position bigint not null,
  created_at timestamptz not null,
  -- waiting: it failed and is attempted again at next_attempt_at. follower: it came behind an earlier
  -- row of its key and has not been attempted from here. dead_lettered: it went to dead letters and
  -- holds the rows behind it until that dead letter is retried and handled, or discarded.
  status text not null check (status in ('waiting', 'follower', 'dead_lettered')),
  -- Failed attempts in all (the quick ones in process included), and those made from here.
  attempts integer not null default 0 check (attempts >= 0),
  parked_attempts integer not null default 0 check (parked_attempts >= 0),
  first_failed_at timestamptz,
  last_failed_at timestamptz,
  next_attempt_at timestamptz,
  error_code text,
  error_message text,
  parked_at timestamptz not null default now(),
  -- A batch delivered again (after a crash, outside transactional mode) parks nothing twice.
  constraint parked_messages_message_key unique (group_name, message_id)
);

-- A key's queue in log order, and "which keys of this batch are parked".
create index parked_messages_key_idx on postbox.parked_messages (group_name, key, transaction_id, global_position);
-- What falls due next in a group.
create index parked_messages_due_idx on postbox.parked_messages (group_name, next_attempt_at) where next_attempt_at is not null;

-- Gives the first row of a key a time once nothing is before it: a follower that comes first is due
-- at once. A row that holds its key (dead_lettered) or already has a time is left as it is.
create function postbox.promote_parked(p_group text, p_key text) returns void
language sql volatile as $$
  update postbox.parked_messages p set next_attempt_at = now()
  where p.id = (select f.id from postbox.parked_messages f
                where f.group_name = p_group and f.key = p_key
                order by f.transaction_id, f.global_position
                limit 1)
    and p.status = 'follower' and p.next_attempt_at is null
$$;

-- Takes a row out of parking (handled, released or discarded) and lets the next row of its key come due.
create function postbox.unpark(p_id bigint) returns void
language plpgsql volatile as $$
declare
  v_group text;
  v_key text;
begin
  delete from postbox.parked_messages where id = p_id returning group_name, key into v_group, v_key;
  if v_key is not null then
    perform postbox.promote_parked(v_group, v_key);
  end if;
end
$$;

-- A dead letter that holds parked rows of its key lets them go once it is retried and handled, or
-- discarded, whichever way that happens (the API, the command line, the console, plain SQL): the row
-- that held them is removed, the next comes due, and the group's processes are told. The NOTIFY is
-- delivered when the transaction commits, and not at all when it rolls back.
create function postbox.release_parked_behind_dead_letter() returns trigger
language plpgsql as $$
declare
  v_id bigint;
begin
  select p.id into v_id from postbox.parked_messages p
  where p.group_name = new.group_name and p.message_id = new.message_id and p.status = 'dead_lettered';
  if v_id is not null then
    perform postbox.unpark(v_id);
    perform pg_notify('{{parkedChannel}}', new.group_name);
  end if;
  return null;
end
$$;

create trigger dead_letters_release_parked
after update of status on postbox.dead_letters
for each row when (new.status in ('retried', 'discarded') and old.status is distinct from new.status)
execute function postbox.release_parked_behind_dead_letter();

-- The todo history: todo_event_logs with its columns and four indexes, plus where each row
-- came from. With the timescaledb extension it is a hypertable of 1-day chunks; otherwise a table
-- partitioned by day on "timestamp", with a default partition so that no insert ever fails.
create schema if not exists todo_history;

do $$
declare
  columns constant text := $cols$
    id bigserial not null,
    "timestamp" timestamptz not null default now(),
    event_type varchar(50) not null,
    entity varchar(50) not null,
    entity_id varchar(100) not null,
    group_id varchar(100),
    group_name varchar(255),
    task_id varchar(100),
    task_name varchar(255),
    changes text,
    user_name varchar(100),
    workspace varchar(100),
    event_data jsonb,
    message_id text not null,
    source_topic text not null,
    source_partition integer,
    source_offset bigint,
    timestamp_fallback boolean not null default false,
    primary key ("timestamp", id)
  $cols$;
  hypertable boolean := false;
begin
  if exists (select 1 from pg_available_extensions where name = 'timescaledb') then
    begin
      create extension if not exists timescaledb;
      execute format('create table todo_event_logs (%s)', columns);
      execute $sql$select create_hypertable('todo_event_logs', 'timestamp', chunk_time_interval => interval '1 day')$sql$;
      hypertable := true;
    exception when others then
      raise notice 'timescaledb is installed but could not be used (%); todo_event_logs gets native daily partitions', sqlerrm;
    end;
  end if;
  if not hypertable then
    execute format('create table todo_event_logs (%s) partition by range ("timestamp")', columns);
    create table todo_event_logs_default partition of todo_event_logs default;
  end if;
end
$$;

create index idx_event_type on todo_event_logs (event_type, "timestamp" desc);
create index idx_group_id on todo_event_logs (group_id, "timestamp" desc);
create index idx_task_id on todo_event_logs (task_id, "timestamp" desc);
create index idx_entity on todo_event_logs (entity, entity_id, "timestamp" desc);
-- The live feed reads rows stored after the last one it pushed.
create index idx_event_logs_id on todo_event_logs (id);

-- Message ids already stored: a redelivered message finds its id here and adds no row. A
-- partitioned table cannot hold a unique index on message_id alone, so the ids live apart.
create table todo_event_log_ids (
  message_id text primary key,
  recorded_at timestamptz not null default now()
);

create index todo_event_log_ids_recorded_idx on todo_event_log_ids (recorded_at);

-- 'hypertable', 'partitioned' (native daily partitions) or 'plain'.
create function todo_history.event_log_storage() returns text
language sql stable as $$
  select case
    when exists (select 1 from pg_partitioned_table where partrelid = to_regclass('todo_event_logs')) then 'partitioned'
    when to_regclass('timescaledb_information.hypertables') is not null then 'hypertable'
    else 'plain'
  end
$$;

-- Creates the daily partitions of first_day and the days_ahead days after it (UTC) that are
-- missing, and returns how many it created. A day whose rows already sit in the default
-- partition is left there. Nothing to do on a hypertable: TimescaleDB makes its own chunks.
create function todo_history.ensure_event_log_partitions(days_ahead integer, first_day date default (now() at time zone 'UTC')::date)
returns integer
language plpgsql as $$
declare
  day date;
  partition_name text;
  created integer := 0;
begin
  if todo_history.event_log_storage() <> 'partitioned' then
    return 0;
  end if;
  perform pg_advisory_xact_lock(hashtext('todo_history.ensure_event_log_partitions'));
  for offset_days in 0 .. days_ahead loop
    day := first_day + offset_days;
    partition_name := 'todo_event_logs_' || to_char(day, 'YYYYMMDD');
    continue when to_regclass(partition_name) is not null;
    begin
      execute format(
        'create table %I partition of todo_event_logs for values from (%L) to (%L)',
        partition_name, day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC');
      created := created + 1;
    exception when check_violation then
      raise notice 'todo_event_logs_default holds rows of %; that day stays in the default partition', day;
    end;
  end loop;
  return created;
end
$$;

-- Retention: drops the daily partitions (or TimescaleDB chunks) that end on or before cutoff,
-- deletes older rows kept in the default partition, and forgets the ids recorded before cutoff.
-- Returns the number of partitions or chunks dropped.
create function todo_history.drop_event_logs_before(cutoff timestamptz)
returns integer
language plpgsql as $$
declare
  storage text := todo_history.event_log_storage();
  partition record;
  dropped integer := 0;
begin
  if storage = 'hypertable' then
    execute 'select count(*)::int from drop_chunks(''todo_event_logs'', older_than => $1)' into dropped using cutoff;
  elsif storage = 'partitioned' then
    for partition in
      select c.relname
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
      where i.inhparent = to_regclass('todo_event_logs')
        and c.relname ~ '^todo_event_logs_[0-9]{8}$'
        and (to_date(substring(c.relname from '[0-9]{8}$'), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= cutoff
    loop
      execute format('drop table %I', partition.relname);
      dropped := dropped + 1;
    end loop;
    delete from todo_event_logs_default where "timestamp" < cutoff;
  else
    delete from todo_event_logs where "timestamp" < cutoff;
  end if;
  delete from todo_event_log_ids where recorded_at < cutoff;
  return dropped;
end
$$;

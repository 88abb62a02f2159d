-- Partitioned consumer groups: one group shared by many processes, each partition read by one of
-- them at a time, in the order of its messages' keys.
--
-- Every message falls in one of {{partitionBuckets}} buckets, a function of its key (of its id when it has
-- no key): the first byte of the key's MD5, modulo {{partitionBuckets}}. A group of N partitions gives
-- partition p the buckets b with floor(b * N / {{partitionBuckets}}) = p, so the partition of a key is
-- floor(bucket * N / {{partitionBuckets}}), the same in SQL (postbox.partition_of) and in TypeScript. A bucket
-- is written with the row and never changes, so a group can have any number of partitions up to
-- {{partitionBuckets}}, and groups of one topic can have different numbers.
--
-- On a log that already holds rows, adding the column rewrites postbox.messages and the index is
-- built while writes wait: plan a maintenance window for a large log.
alter table postbox.messages
  add column bucket smallint not null
  generated always as (get_byte(decode(md5(coalesce(key, message_id::text)), 'hex'), 0) % {{partitionBuckets}}) stored;

-- The read path of a partition: each of its buckets is one range of this index, in commit-safe order.
create index messages_partition_reader_idx on postbox.messages (topic, bucket, transaction_id, global_position);

-- The partition of a bucket in a group of p_partitions partitions.
create function postbox.partition_of(p_bucket integer, p_partitions integer) returns integer
language sql immutable strict parallel safe as $$
  select (p_bucket * p_partitions) / {{partitionBuckets}}
$$;

alter table postbox.consumer_groups
  add column partitions integer not null default 1 check (partitions between 1 and {{partitionBuckets}});

-- Each partition of a group: its checkpoint and its lease. A group of one partition has one row.
create table postbox.group_partitions (
  group_name text not null references postbox.consumer_groups (group_name) on delete cascade,
  partition integer not null check (partition >= 0),
  checkpoint_transaction_id xid8 not null default '0',
  checkpoint_position bigint not null default 0,
  lease_owner text,
  lease_expires_at timestamptz,
  -- When the partition last lost its owner (released, or created without one), for health.
  released_at timestamptz not null default now(),
  -- The last failure of a batch of this partition; cleared by the next batch that commits.
  last_error text,
  last_error_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (group_name, partition)
);

insert into postbox.group_partitions
  (group_name, partition, checkpoint_transaction_id, checkpoint_position, lease_owner, lease_expires_at, last_error, last_error_at)
select group_name, 0, checkpoint_transaction_id, checkpoint_position, lease_owner, lease_expires_at, last_error, last_error_at
from postbox.consumer_groups;

-- The processes running a group, each with a heartbeat: partitions are spread over the live ones.
create table postbox.group_members (
  group_name text not null references postbox.consumer_groups (group_name) on delete cascade,
  member text not null,
  joined_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (group_name, member)
);

-- The group's checkpoint, lease and last error now live per partition.
alter table postbox.consumer_groups
  drop column checkpoint_transaction_id,
  drop column checkpoint_position,
  drop column lease_owner,
  drop column lease_expires_at,
  drop column last_error,
  drop column last_error_at;

-- The topics a process reads now: some partition of a group reading them is leased.
create or replace function postbox.topics_with_readers() returns setof text
language sql stable as $$
  select distinct t.topic
  from postbox.consumer_groups g cross join unnest(g.topics) as t(topic)
  where exists (select from postbox.group_partitions p where p.group_name = g.group_name and p.lease_expires_at > now())
$$;

-- The one read of the log, with partitions: with p_partitions above 1 it reads only partition
-- p_partition's buckets of the topics. Each bucket is one range of messages_partition_reader_idx;
-- a page is taken from every range, and only the rows up to the earliest last row of a full page
-- are returned, so that no range can still hold an earlier row: the merge never skips, and reads
-- about twice what it returns whatever the spread of the keys.
drop function postbox.read_after(text[], xid8, bigint, integer, pg_snapshot);
create function postbox.read_after(
  p_topics text[],
  p_transaction_id xid8,
  p_position bigint,
  p_limit integer,
  p_skip_visible_in pg_snapshot default null,
  p_partition integer default 0,
  p_partitions integer default 1
) returns setof postbox.messages
language plpgsql stable
set enable_seqscan = off
set enable_bitmapscan = off
as $$
declare
  watermark xid8 := pg_snapshot_xmin(pg_current_snapshot());
  v_first integer;
  v_last integer;
  v_page integer;
begin
  if p_partitions > 1 then
    -- The buckets b with floor(b * p_partitions / buckets) = p_partition.
    v_first := (p_partition * {{partitionBuckets}} + p_partitions - 1) / p_partitions;
    v_last := ((p_partition + 1) * {{partitionBuckets}} + p_partitions - 1) / p_partitions - 1;
    v_page := least(p_limit, greatest(1, (2 * p_limit + (v_last - v_first + 1) * cardinality(p_topics) - 1)
                                          / ((v_last - v_first + 1) * cardinality(p_topics))));
    return query
      with fetched as materialized (
        select x.*
        from unnest(p_topics) as t(name)
        cross join generate_series(v_first, v_last) as b(bucket)
        cross join lateral (
          select m.* from postbox.messages m
          where m.topic = t.name and m.bucket = b.bucket
            and (m.transaction_id, m.global_position) > (p_transaction_id, p_position)
            and m.transaction_id < watermark
            and (p_skip_visible_in is null or not pg_visible_in_snapshot(m.transaction_id, p_skip_visible_in))
          order by m.transaction_id, m.global_position
          limit v_page
        ) x
      ),
      -- The last row of every range that filled its page: rows after the earliest of them may have
      -- unread rows of that range before them.
      full_ranges as (
        select f.topic, f.bucket from fetched f group by f.topic, f.bucket having count(*) = v_page
      ),
      bound as (
        select l.transaction_id, l.global_position
        from full_ranges r
        cross join lateral (
          select f.transaction_id, f.global_position from fetched f
          where f.topic = r.topic and f.bucket = r.bucket
          order by f.transaction_id desc, f.global_position desc
          limit 1
        ) l
        order by l.transaction_id, l.global_position
        limit 1
      )
      select f.* from fetched f
      where not exists (select from bound)
         or (f.transaction_id, f.global_position) <= (select b.transaction_id, b.global_position from bound b)
      order by f.transaction_id, f.global_position
      limit p_limit;
  elsif p_topics is null then
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

-- How far a reader is behind, for one partition of a group when p_partitions is above 1.
drop function postbox.backlog(text[], xid8, bigint, pg_snapshot);
create function postbox.backlog(
  p_topics text[],
  p_transaction_id xid8,
  p_position bigint,
  p_skip_visible_in pg_snapshot default null,
  p_partition integer default 0,
  p_partitions integer default 1
) returns table (messages bigint, oldest timestamptz)
language sql stable as $$
  select count(*), min(m.created_at)
  from postbox.messages m
  where m.topic = any(p_topics)
    and (p_partitions = 1 or m.bucket between (p_partition * {{partitionBuckets}} + p_partitions - 1) / p_partitions
                                          and ((p_partition + 1) * {{partitionBuckets}} + p_partitions - 1) / p_partitions - 1)
    and (m.transaction_id, m.global_position) > (p_transaction_id, p_position)
    and (p_skip_visible_in is null or not pg_visible_in_snapshot(m.transaction_id, p_skip_visible_in))
$$;

-- The live feed's own commit-safe order. The history consumer's partitions write in parallel, so
-- ids no longer grow in commit order: a row with a lower id can commit after one with a higher id.
-- Each row now records the transaction that wrote it; the feed reads rows in (transaction_id, id)
-- order, only below the visibility watermark (transaction_id < pg_snapshot_xmin(pg_current_snapshot())),
-- the same rule as Postbox's log, so that a row committed late is still read.
--
-- The column is added with a constant default first, which PostgreSQL records in the catalog
-- without rewriting the table (a native partitioned table, its partitions, or a TimescaleDB
-- hypertable and its chunks alike); rows stored before this migration read as transaction 0, in id
-- order, which was their commit order then. New rows get the id of their writing transaction.
alter table todo_event_logs add column transaction_id xid8 not null default '0'::xid8;
alter table todo_event_logs alter column transaction_id set default pg_current_xact_id();

comment on column todo_event_logs.transaction_id is
  'Transaction that stored the row (0 for rows stored before migration 0003): the live feed reads by (transaction_id, id) below the watermark.';

-- The feed's read order. It replaces the index on id alone, which only the feed used.
create index idx_event_logs_feed on todo_event_logs (transaction_id, id);
drop index idx_event_logs_id;

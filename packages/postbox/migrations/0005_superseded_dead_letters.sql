-- Why the library itself resolved a dead letter; null for those a person retried or discarded.
alter table postbox.dead_letters add column resolution text;

-- A blue/green rebuild replaces version N of a projection with version N+1, which reads the log from
-- the beginning itself, and deletes N's group: N's dead letters have no group left to retry them.
-- The swap now discards them with a resolution that says so; these are the ones earlier swaps left open.
update postbox.dead_letters d
set status = 'discarded',
    resolved_at = now(),
    resolution = format(
      'superseded: projection %s was rebuilt and version %s swapped in for version %s; version %s reads every event from the beginning itself (its own dead letters are in group %s)',
      p.name, p.active_version, substring(d.group_name from ':v([0-9]+)$'), p.active_version, 'projection:' || p.name || ':v' || p.active_version)
from postbox.projections p
where d.status in ('pending', 'retrying')
  and d.group_name in (select 'projection:' || p.name || ':v' || v from generate_series(1, p.active_version - 1) as v);

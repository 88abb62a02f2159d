import { beginningOfLog } from '../log/position.js';
import { latestTopic } from '../log/topics.js';
import { plural } from '../text/plural.js';
import type { DoctorCheck, DoctorContext } from './doctor-check.js';
import { inspectReadPlans, type ProbeRead } from './read-plans.js';

/** Stands in for a topic when the log is empty: the plan's shape does not depend on the name. */
const probeTopic = 'postbox-doctor-probe';

/**
 * The reads consumers make here: each group's own (its topics, its first partition of as many as
 * it has, from that partition's checkpoint); without groups, one of the newest topic; and the read
 * of every stream that projections and readAll make.
 */
async function probeReads({ db, settings, groups }: DoctorContext): Promise<ProbeRead[]> {
  const limit = settings.batchSize;
  const reads: ProbeRead[] = (await groups()).slice(0, settings.planGroups).map((group) => ({
    label: `group ${group.group}`,
    options: {
      topics: group.topics,
      after: group.partitions[0]?.checkpoint ?? beginningOfLog,
      limit,
      partition: { index: 0, count: Math.max(1, group.partitions.length) },
    },
  }));
  if (reads.length === 0) {
    const topic = (await latestTopic(db)) ?? probeTopic;
    reads.push({ label: `topic ${topic}`, options: { topics: [topic], after: beginningOfLog, limit } });
  }
  reads.push({ label: 'every stream', options: { topics: null, after: beginningOfLog, limit } });
  return reads;
}

const indexFix =
  'compare the indexes of postbox.messages with `postbox migrate --print` (create a missing one; `REINDEX INDEX CONCURRENTLY` an invalid one), then run `ANALYZE postbox.messages`';

/** The read path reaches the log through its indexes, in log order, whatever the statistics say. */
export const readPlanCheck: DoctorCheck = {
  check: 'read-plan',
  title: 'read path plan',
  needsSchema: true,
  async run(context) {
    const reads = await probeReads(context);
    const report = await inspectReadPlans(context.db, reads);
    if (report.problems.length > 0) {
      return {
        verdict: 'fail',
        finding: `the read path does not stay on an index in log order: ${report.problems.join('; ')}`,
        fix: indexFix,
      };
    }
    if (report.seen === 'plans') {
      return {
        verdict: 'ok',
        finding: `${plural(report.reads, 'read')} (${reads.map((read) => read.label).join(', ')}), with custom and generic plans, stay on ${report.indexes.join(', ')} in log order`,
      };
    }
    return {
      verdict: 'warn',
      finding: `${plural(report.reads, 'read')} made ${plural(report.indexScans, 'index scan')} and no sequential scan of postbox.messages, but their plans could not be inspected (${report.reason})`,
      fix: 'run `postbox doctor` as a superuser on a PostgreSQL server, so that auto_explain can show whether the reads keep log order without sorting',
    };
  },
};

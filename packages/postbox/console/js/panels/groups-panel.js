import { api } from '../api.js';
import { dataTable, emptyRow, formatSeconds, formatTime, h, isoTitle, statusChip, truncate } from '../dom.js';
import { openResetDialog } from './reset-dialog.js';

const columns = 8;

/** Consumer groups with their lag; under each, its partitions (owner, checkpoint, lag, time without an owner) and members. */
export const groupsPanel = {
  id: 'groups',
  title: 'Consumer groups',
  nav: 'Groups',
  create(context) {
    const body = h('tbody', { id: 'ops-groups-body' });
    const element = dataTable(
      { 'data-testid': 'ops-groups' },
      [
        'Group',
        'Topics',
        'Status',
        ['Lag (messages)', 'num'],
        ['Lag (seconds)', 'num'],
        ['Partitions', 'num'],
        'Last error',
        ['Actions', 'actions-col'],
      ],
      body,
    );

    async function refresh() {
      const groups = await api('GET', 'api/groups');
      body.replaceChildren(
        ...(groups.length === 0
          ? [emptyRow(columns, 'No consumer groups yet.', 'ops-groups-empty')]
          : groups.flatMap((group) => [groupRow(group), groupDetailRow(group)])),
      );
    }

    function groupRow(group) {
      const lagMessages = Number(group.lagMessages ?? 0);
      const partitions = group.partitions ?? [];
      const owned = partitions.filter((partition) => partition.owner).length;
      return h(
        'tr',
        { class: 'ops-group-row', 'data-testid': 'ops-group-row', 'data-group': group.group },
        h('td', { class: 'mono' }, group.group),
        h('td', {}, (group.topics ?? []).join(', ')),
        h('td', {}, statusChip(group.status)),
        h('td', { class: `num ${lagMessages > 0 ? 'warn-text' : ''}`, 'data-testid': 'ops-group-lag' }, String(lagMessages)),
        h('td', { class: 'num', 'data-testid': 'ops-group-lag-seconds' }, formatSeconds(group.lagSeconds)),
        h(
          'td',
          {
            class: `num ${owned < partitions.length ? 'warn-text' : ''}`,
            'data-testid': 'ops-group-partitions',
            title: `${owned} of ${partitions.length} partitions have an owner`,
          },
          `${owned}/${partitions.length} owned`,
        ),
        group.lastError
          ? h('td', { class: 'error-text', title: group.lastError }, truncate(group.lastError, 120))
          : h('td', { class: 'muted' }, '—'),
        h(
          'td',
          { class: 'actions-col' },
          h(
            'button',
            {
              type: 'button',
              class: 'button small',
              'data-testid': 'group-reset',
              disabled: context.info.readOnly,
              title: context.info.readOnly ? 'This console is read-only' : 'Move the group to read from another place in the log',
              onclick: () => openResetDialog(context, group),
            },
            'Reset…',
          ),
        ),
      );
    }

    function groupDetailRow(group) {
      const partitions = group.partitions ?? [];
      const members = group.members ?? [];
      return h(
        'tr',
        { class: 'group-detail', 'data-testid': 'ops-group-detail', 'data-group': group.group },
        h(
          'td',
          { colspan: columns },
          h(
            'div',
            { class: 'group-detail-grid' },
            h(
              'section',
              { class: 'subtable' },
              h('h3', { class: 'subtable-title' }, `Partitions (${partitions.length})`),
              h(
                'table',
                { class: 'data compact', 'data-testid': 'ops-partitions' },
                h(
                  'thead',
                  {},
                  h(
                    'tr',
                    {},
                    h('th', { class: 'num' }, '#'),
                    h('th', {}, 'Owner'),
                    h('th', {}, 'Checkpoint'),
                    h('th', { class: 'num' }, 'Lag (messages)'),
                    h('th', { class: 'num' }, 'Lag (seconds)'),
                    h('th', { class: 'num' }, 'Unowned for'),
                    h('th', {}, 'Last error'),
                  ),
                ),
                h(
                  'tbody',
                  {},
                  partitions.map((partition) => partitionRow(group.group, partition)),
                ),
              ),
            ),
            h(
              'section',
              { class: 'subtable' },
              h('h3', { class: 'subtable-title' }, `Members (${members.length})`),
              h(
                'table',
                { class: 'data compact', 'data-testid': 'ops-members' },
                h('thead', {}, h('tr', {}, h('th', {}, 'Member'), h('th', {}, 'State'), h('th', {}, 'Partitions'), h('th', {}, 'Joined'))),
                h(
                  'tbody',
                  {},
                  members.length === 0
                    ? emptyRow(4, 'No process runs this group.', 'ops-members-empty')
                    : members.map((member) => memberRow(group.group, member)),
                ),
              ),
            ),
          ),
        ),
      );
    }

    return { element, refresh };
  },
};

function partitionRow(groupName, partition) {
  const lagMessages = Number(partition.lagMessages ?? 0);
  const unowned = Number(partition.unownedSeconds ?? 0);
  const checkpoint = partition.checkpoint ?? {};
  return h(
    'tr',
    {
      'data-testid': 'ops-partition-row',
      'data-group': groupName,
      'data-partition': partition.partition,
      'data-owner': partition.owner ?? '',
    },
    h('td', { class: 'num' }, String(partition.partition)),
    partition.owner
      ? h('td', { class: 'mono small-text', 'data-testid': 'ops-partition-owner' }, partition.owner)
      : h(
          'td',
          { class: 'mono small-text', 'data-testid': 'ops-partition-owner' },
          h('span', { class: 'warn-text' }, 'none'),
          partition.expiredOwner ? h('span', { class: 'muted' }, ` (lease of ${partition.expiredOwner} expired)`) : null,
        ),
    h(
      'td',
      { class: 'mono small-text', title: 'transaction id / global position of the last message handled' },
      `${checkpoint.transactionId ?? '—'} / ${checkpoint.globalPosition ?? '—'}`,
    ),
    h('td', { class: `num ${lagMessages > 0 ? 'warn-text' : ''}`, 'data-testid': 'ops-partition-lag' }, String(lagMessages)),
    h('td', { class: 'num' }, formatSeconds(partition.lagSeconds)),
    h(
      'td',
      { class: `num ${unowned > 0 ? 'warn-text' : ''}`, 'data-testid': 'ops-partition-unowned' },
      unowned > 0 ? formatSeconds(unowned) : '—',
    ),
    partition.lastError
      ? h(
          'td',
          { class: 'error-text', title: partition.lastError, 'data-testid': 'ops-partition-error' },
          truncate(partition.lastError, 80),
        )
      : h('td', { class: 'muted' }, '—'),
  );
}

function memberRow(groupName, member) {
  const partitions = member.partitions ?? [];
  return h(
    'tr',
    {
      'data-testid': 'ops-member-row',
      'data-group': groupName,
      'data-member': member.member,
      'data-live': String(Boolean(member.live)),
      'data-partitions': partitions.join(','),
    },
    h('td', { class: 'mono small-text' }, member.member),
    h('td', {}, statusChip(member.live ? 'live' : 'expired')),
    h(
      'td',
      { 'data-testid': 'ops-member-partitions' },
      partitions.length > 0 ? partitions.join(', ') : h('span', { class: 'muted' }, 'none'),
    ),
    h('td', { title: isoTitle(member.joinedAt) }, formatTime(member.joinedAt)),
  );
}

import { api, listOf } from './api.js';
import { confirmButton, formatSeconds, formatTime, h, isoTitle } from './dom.js';
import { clearMessage, showError, showInfo } from './messages.js';

const enc = encodeURIComponent;

/**
 * The operations view: consumer groups with their lag, partitions and members; dead letters with
 * retry and discard; the relay.
 */
export function createOps({ groupsBody, deadBody, deadCount, relay, live, badge }) {
  let inFlight = false;
  let deadSignature = '';

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      const [groups, dead, relayStats] = await Promise.allSettled([
        api('GET', '/api/ops/groups'),
        api('GET', '/api/ops/dead-letters'),
        api('GET', '/api/ops/relay'),
      ]);
      if (groups.status === 'fulfilled') {
        renderGroups(listOf(groups.value, 'groups'));
        clearMessage('ops-groups');
      } else showError(groups.reason, 'Loading consumer groups', 'ops-groups');
      if (dead.status === 'fulfilled') {
        renderDeadLetters(listOf(dead.value, 'deadLetters'));
        clearMessage('ops-dead');
      } else showError(dead.reason, 'Loading dead letters', 'ops-dead');
      if (relayStats.status === 'fulfilled') {
        renderRelay(relayStats.value);
        clearMessage('ops-relay');
      } else if (relayStats.reason?.status === 404) {
        renderRelay({ enabled: false });
      } else showError(relayStats.reason, 'Loading relay stats', 'ops-relay');
      live.textContent = `Updated ${formatTime(new Date())}`;
    } finally {
      inFlight = false;
    }
  }

  function renderGroups(groups) {
    if (groups.length === 0) {
      groupsBody.replaceChildren(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No consumer groups yet.')));
      return;
    }
    groupsBody.replaceChildren(...groups.flatMap((group) => [groupRow(group), groupDetailRow(group)]));
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
      h('td', { class: 'num' }, formatSeconds(group.lagSeconds)),
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
    );
  }

  /** Under each group: its partitions (owner, checkpoint, lag, time without an owner) and its members. */
  function groupDetailRow(group) {
    const partitions = group.partitions ?? [];
    const members = group.members ?? [];
    return h(
      'tr',
      { class: 'group-detail', 'data-testid': 'ops-group-detail', 'data-group': group.group },
      h(
        'td',
        { colspan: 7 },
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
                  ? h('tr', {}, h('td', { colspan: 4, class: 'empty', 'data-testid': 'ops-members-empty' }, 'No process runs this group.'))
                  : members.map((member) => memberRow(group.group, member)),
              ),
            ),
          ),
        ),
      ),
    );
  }

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
        ? h('td', { class: 'error-text', title: partition.lastError }, truncate(partition.lastError, 80))
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

  function renderDeadLetters(letters) {
    const open = letters.filter((letter) => !letter.status || letter.status === 'pending' || letter.status === 'retrying').length;
    deadCount.textContent = letters.length === 0 ? 'None' : `${open} open`;
    badge.hidden = open === 0;
    badge.textContent = String(open);
    const signature = JSON.stringify(letters);
    if (signature === deadSignature) return;
    deadSignature = signature;
    if (letters.length === 0) {
      deadBody.replaceChildren(
        h(
          'tr',
          {},
          h('td', { colspan: 9, class: 'empty', 'data-testid': 'dead-letters-empty' }, 'No dead letters. Every message was handled.'),
        ),
      );
      return;
    }
    deadBody.replaceChildren(...letters.map(deadLetterRow));
  }

  function deadLetterRow(letter) {
    const id = String(letter.id);
    const actionable = !letter.status || letter.status === 'pending';
    return h(
      'tr',
      {
        'data-testid': 'dead-letter-row',
        'data-id': id,
        'data-status': letter.status,
        'data-attempts': letter.attempts,
        'data-last-failed-at': letter.lastFailedAt,
      },
      h('td', { class: 'mono' }, id),
      h(
        'td',
        { class: 'mono' },
        letter.group,
        letter.handler && letter.handler !== letter.group ? h('div', { class: 'muted small-text' }, letter.handler) : null,
      ),
      h('td', { class: 'mono' }, letter.topic),
      h('td', { class: 'mono' }, letter.type ?? '—'),
      h(
        'td',
        { class: 'error-text', title: letter.errorMessage, 'data-testid': 'dead-letter-error' },
        truncate(letter.errorMessage ?? '', 160),
      ),
      h('td', { class: 'num', 'data-testid': 'dead-letter-attempts' }, String(letter.attempts ?? '—')),
      h('td', { title: isoTitle(letter.lastFailedAt) }, formatTime(letter.lastFailedAt)),
      h('td', {}, statusChip(letter.status ?? 'pending')),
      h(
        'td',
        { class: 'actions-col' },
        h(
          'div',
          { class: 'row-actions' },
          h(
            'button',
            {
              type: 'button',
              class: 'button small',
              'data-testid': 'dead-letter-retry',
              disabled: !actionable,
              onclick: (event) => act(event.currentTarget, id, 'retry', `Dead letter ${id} sent back to its group`),
            },
            'Retry',
          ),
          actionable
            ? confirmButton('Discard', 'Confirm discard', { 'data-testid': 'dead-letter-discard' }, () =>
                act(null, id, 'discard', `Dead letter ${id} discarded`),
              )
            : null,
        ),
      ),
    );
  }

  async function act(button, id, action, success) {
    if (button) button.disabled = true;
    try {
      await api('POST', `/api/ops/dead-letters/${enc(id)}/${action}`, {});
      clearMessage('dead-letter-action');
      showInfo(success);
    } catch (error) {
      showError(error, action === 'retry' ? 'Retrying the dead letter' : 'Discarding the dead letter', 'dead-letter-action');
    } finally {
      if (button) button.disabled = false;
      await refresh();
    }
  }

  function renderRelay(stats) {
    if (!stats || stats.enabled === false) {
      relay.replaceChildren(
        h('p', { class: 'muted', 'data-testid': 'relay-disabled' }, 'Relay not running: this server relays nothing to Kafka.'),
      );
      return;
    }
    const rows = Object.entries(stats)
      .filter(([key]) => key !== 'enabled')
      .map(([key, value]) => h('div', { class: 'stat' }, h('dt', {}, labelOf(key)), h('dd', {}, formatValue(key, value))));
    relay.replaceChildren(h('dl', { class: 'stats', 'data-testid': 'relay-stats-list' }, rows));
  }

  return { refresh };
}

function statusChip(status) {
  const value = String(status ?? 'unknown');
  return h('span', { class: `chip status-chip status-${value.replace(/[^a-z-]/gi, '')}` }, value);
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function labelOf(key) {
  return key.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase());
}

function formatValue(key, value) {
  if (value === null || value === undefined) return '—';
  if (/At$/.test(key)) return formatTime(value);
  if (/Seconds$/.test(key)) return formatSeconds(value);
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

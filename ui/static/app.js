// raftkv dashboard: polls /ui/api/cluster every second and renders it.
// Every value is set as text (textContent), never as markup.
'use strict';

const POLL_MS = 1000;
const STATES = ['serving', 'pulling', 'bePulling', 'gcing'];
const STATE_NAMES = { serving: 'serving', pulling: 'pulling', bePulling: 'being pulled', gcing: 'gc pending' };

function $(id) { return document.getElementById(id); }

// el builds an element with attributes and children (strings become text).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    // Through the CSSOM: the content security policy refuses style attributes.
    else if (k === 'style') Object.assign(e.style, v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function num(v) { return v === undefined || v === null ? '–' : String(v); }

function fmtRate(v) {
  if (v === undefined || v === null) return '–';
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

// fmtBytes writes n bytes in the largest binary unit that keeps it at 1
// or more, as raftkvctl does: 1.5 GiB.
function fmtBytes(n) {
  if (n === undefined || n === null) return '–';
  if (n < 1024) return n + ' B';
  const units = 'KMGTPE';
  let f = n / 1024;
  let i = 0;
  while (f >= 1024 && i < units.length - 1) { f /= 1024; i++; }
  return f.toFixed(1) + ' ' + units[i] + 'iB';
}

function fmtAgo(at, now) {
  const s = Math.max(0, Math.round((now - new Date(at).getTime()) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s ago';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min ago';
}

// ranges writes sorted bucket numbers as "0-3, 7, 9-10".
function ranges(list) {
  if (!list || list.length === 0) return '–';
  const xs = [...list].sort((a, b) => a - b);
  const out = [];
  let start = xs[0], prev = xs[0];
  for (const x of xs.slice(1).concat([null])) {
    if (x !== null && x === prev + 1) { prev = x; continue; }
    out.push(start === prev ? String(start) : start + '-' + prev);
    start = prev = x;
  }
  return out.join(', ');
}

function groupColor(gid) {
  if (!gid) return '#eceff1';
  return 'hsl(' + ((gid * 137) % 360) + ', 55%, 78%)';
}

function renderSummary(c, now) {
  $('self').textContent = c.self ? String(c.self) : '–';
  const leader = $('leader');
  leader.dataset.leader = String(c.leader || 0);
  leader.textContent = c.leader ? String(c.leader) : 'none';
  $('term').textContent = num(c.term);
  const lc = c.lastLeaderChange;
  $('last-change').textContent = lc
    ? lc.from + ' → ' + lc.to + ' (term ' + lc.term + '), ' + fmtAgo(lc.at, now)
    : 'none seen';
  $('writes-rate').textContent = fmtRate(c.writesPerSec);
  $('reads-rate').textContent = fmtRate(c.readsPerSec);
  const err = $('error');
  err.hidden = !c.error;
  err.textContent = c.error || '';
}

function renderMembers(c) {
  const rows = (c.members || []).map((m) => {
    const tr = el('tr', {
      class: 'member', 'data-id': m.id, 'data-role': m.role, 'data-up': m.up,
      'data-term': m.term, 'data-applied': m.appliedIndex, 'data-commit': m.commitIndex,
      'data-version': m.version || '',
      'data-level': m.level, 'data-cluster-level': m.clusterLevel,
      'data-bytes': m.dataBytes, 'data-quota': m.quotaBytes,
    });
    const self = m.id === c.self ? ' (this one)' : '';
    const role = m.up ? m.role : 'down';
    tr.append(
      el('td', {}, m.id),
      el('td', { class: 'text role-' + role, title: m.error || null }, role + (m.up && m.error ? ' ⚠' : '')),
      el('td', { class: 'text' }, (m.clientURL || '–') + self),
    );
    if (!m.up) {
      tr.append(el('td', { class: 'text', colspan: 11 }, m.error || 'no answer'));
      return tr;
    }
    const lagClass = (v) => (v > 100 ? 'lagging' : null);
    tr.append(
      el('td', {}, m.term),
      el('td', {}, m.commitIndex),
      el('td', {}, m.appliedIndex),
      el('td', { class: lagClass(m.applyLag) }, m.applyLag),
      el('td', { title: m.state || null }, num(m.match)),
      el('td', { class: lagClass(m.matchLag), title: m.state || null }, m.matchLag === null || m.matchLag === undefined ? '–' : m.matchLag + (m.state && m.state !== 'replicate' ? ' (' + m.state + ')' : '')),
      el('td', {}, fmtRate(m.writesPerSec)),
      el('td', {}, fmtRate(m.readsPerSec)),
      el('td', {}, num(m.leaderChanges)),
      el('td', { class: m.quotaBytes > 0 && m.dataBytes >= 0.9 * m.quotaBytes ? 'lagging' : null },
        fmtBytes(m.dataBytes) + (m.quotaBytes > 0 ? ' of ' + fmtBytes(m.quotaBytes) : '')),
      el('td', { class: 'text', title: 'the binary speaks feature level ' + m.level + '; its group runs at cluster level ' + m.clusterLevel },
        (m.version || '–') + ' · level ' + m.level + (m.clusterLevel !== m.level ? ' (cluster ' + m.clusterLevel + ')' : '')),
    );
    return tr;
  });
  $('members').tBodies[0].replaceChildren(...rows);
}

// bucketStates maps each bucket listed in the shard sections to the states
// the sections give it, each with the group whose section says so.
function bucketStates(sections) {
  const states = new Map();
  for (const s of sections) {
    for (const st of STATES) {
      for (const b of (s.buckets && s.buckets[st]) || []) {
        if (!states.has(b)) states.set(b, []);
        states.get(b).push({ state: st, group: s.group });
      }
    }
  }
  return states;
}

// stateOf picks, of a bucket's states, the one of group gid (its owner in
// the config), else the first that is not serving, else the first.
function stateOf(list, gid) {
  if (!list || list.length === 0) return null;
  return list.find((s) => s.group === gid) || list.find((s) => s.state !== 'serving') || list[0];
}

// bestShard picks, of a group's members, the shard section of the one
// with the highest config version (the leader's when versions tie).
function bestShard(members) {
  let best = null;
  for (const m of members) {
    if (!m.up || !m.shard) continue;
    if (!best || m.shard.configVersion > best.shard.configVersion ||
        (m.shard.configVersion === best.shard.configVersion && m.role === 'leader')) best = m;
  }
  return best ? best.shard : null;
}

function renderSharding(c) {
  const members = c.members || [];
  const shard = bestShard(members);
  const cfgMember = members.find((m) => m.up && m.config);
  const section = $('sharding');
  section.hidden = !shard && !cfgMember;
  section.dataset.kind = shard ? 'shard' : cfgMember ? 'config' : 'none';
  if (section.hidden) return;

  const summary = $('shard-summary');
  const map = $('bucket-map');
  const groupsTable = $('groups');
  const statesTable = $('bucket-states');
  if (shard) {
    const versions = [...new Set(members.filter((m) => m.up && m.shard).map((m) => m.shard.configVersion))];
    summary.replaceChildren(el('p', { id: 'shard-group', 'data-group': shard.group, 'data-version': shard.configVersion },
      'Shard group ' + shard.group + ', config version ' + shard.configVersion +
      (versions.length > 1 ? ' (members at versions ' + versions.sort((a, b) => a - b).join(', ') + ')' : '')));
    statesTable.hidden = false;
    statesTable.tBodies[0].replaceChildren(...STATES.map((st) =>
      el('tr', { 'data-state': st }, el('td', { class: 'text' }, STATE_NAMES[st]),
        el('td', { class: 'text' }, ranges(shard.buckets && shard.buckets[st])))));
    const states = bucketStates([shard]);
    const cells = [...states.keys()].sort((a, b) => a - b).map((b) => {
      const s = stateOf(states.get(b), shard.group);
      return el('div', { class: 'bucket ' + s.state, 'data-bucket': b, 'data-state': s.state,
        title: 'bucket ' + b + ': ' + STATE_NAMES[s.state], style: { background: groupColor(s.state === 'bePulling' ? 0 : shard.group) } }, b);
    });
    map.replaceChildren(...cells);
    groupsTable.hidden = true;
  } else {
    const cs = cfgMember.config;
    const counts = Object.entries(cs.groups || {}).sort((a, b) => Number(a[0]) - Number(b[0]))
      .map(([g, n]) => 'group ' + g + ': ' + n).join(', ');
    summary.replaceChildren(el('p', { id: 'config-summary', 'data-version': cs.version, 'data-buckets': cs.buckets },
      'Config group: version ' + cs.version + ', ' + cs.buckets + ' buckets' + (counts ? ' (' + counts + ')' : '')));
    statesTable.hidden = true;
    const groups = c.groups || [];
    const sections = groups.map((g) => bestShard(g.members)).filter((s) => s);
    const states = bucketStates(sections);
    const owners = (c.shardConfig && c.shardConfig.buckets) || [];
    map.replaceChildren(...owners.map((gid, b) => {
      const s = stateOf(states.get(b), gid);
      const st = s && s.state !== 'serving' ? s.state : '';
      return el('div', { class: 'bucket ' + st, 'data-bucket': b, 'data-owner': gid, 'data-state': st || null,
        title: 'bucket ' + b + ': group ' + (gid || 'none') + (st ? ', ' + STATE_NAMES[st] + ' (group ' + s.group + ')' : ''),
        style: { background: groupColor(gid) } }, b);
    }));
    groupsTable.hidden = groups.length === 0;
    const rows = [];
    for (const g of groups) {
      const gs = bestShard(g.members);
      const migrating = gs ? ['pulling', 'bePulling', 'gcing']
        .filter((st) => gs.buckets && gs.buckets[st] && gs.buckets[st].length)
        .map((st) => STATE_NAMES[st] + ' ' + ranges(gs.buckets[st])).join('; ') : '';
      g.members.forEach((m, i) => {
        const tr = el('tr', { class: 'group-member', 'data-group': g.id, 'data-up': m.up, 'data-role': m.role });
        if (i === 0) {
          tr.append(el('td', { rowspan: g.members.length, style: { background: groupColor(g.id) } }, g.id),
            el('td', { rowspan: g.members.length }, g.buckets));
        }
        tr.append(el('td', { class: 'text', title: m.error || null }, m.clientURL),
          el('td', { class: 'text role-' + (m.up ? m.role : 'down') }, m.up ? m.role : 'down'),
          el('td', {}, m.up ? m.term : '–'), el('td', {}, m.up ? m.appliedIndex : '–'),
          el('td', {}, m.shard ? m.shard.configVersion : '–'));
        if (i === 0) tr.append(el('td', { class: 'text', rowspan: g.members.length }, migrating || '–'));
        rows.push(tr);
      });
    }
    groupsTable.tBodies[0].replaceChildren(...rows);
  }
  $('legend').replaceChildren(
    el('span', {}, el('span', { class: 'bucket pulling' }), 'pulling (data arriving)'),
    el('span', {}, el('span', { class: 'bucket bePulling' }), 'being pulled (old owner)'),
    el('span', {}, el('span', { class: 'bucket gcing' }), 'gc pending'));
}

function render(c) {
  const now = Date.now();
  renderSummary(c, now);
  renderMembers(c);
  renderSharding(c);
  const conn = $('conn');
  conn.dataset.state = 'ok';
  conn.dataset.at = c.at;
  conn.textContent = 'updated ' + new Date(c.at).toLocaleTimeString();
}

async function poll() {
  try {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 5000);
    let resp;
    try {
      resp = await fetch('/ui/api/cluster', { cache: 'no-store', signal: ctl.signal });
    } finally {
      clearTimeout(timer);
    }
    if (!resp.ok) throw new Error((await resp.text()).trim() || resp.statusText);
    render(await resp.json());
  } catch (e) {
    const conn = $('conn');
    conn.dataset.state = 'error';
    conn.textContent = 'cannot reach this member: ' + e.message + ' (showing the last view)';
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();

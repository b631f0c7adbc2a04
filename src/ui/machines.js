// VMs with their supervision and console, and the fleet's nodes.
import { html } from './html.js';
import { useEffect, useRef, useState } from '/vendor/hooks.mjs';
import { useSnapshot } from './live.js';
import { clock, duration } from './format.js';

/** The console of VM `id`, following live (its own event stream: tail, then what it gains). */
function Console({ id }) {
  const [text, setText] = useState('');
  const [status, setStatus] = useState('connecting');
  const pre = useRef(undefined);
  useEffect(() => {
    setText('');
    const source = new EventSource(`/events/console?vm=${encodeURIComponent(id)}`);
    source.addEventListener('console', (e) => {
      const { text: more, replaced } = JSON.parse(e.data);
      setStatus('live');
      setText((t) => (replaced ? more : (t + more).slice(-64 * 1024)));
    });
    source.addEventListener('error', () => setStatus('reconnecting'));
    return () => source.close();
  }, [id]);
  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [text]);
  return html`
    <section class="console" aria-label="console of VM ${id}">
      <h2>Console of VM ${id} <span class="muted small">${status}</span></h2>
      <pre ref=${pre} class="output console-text" tabindex="0" data-console=${id}>
${text || '(nothing yet)'}</pre>
    </section>
  `;
}

/** The VMs of the state's start commands; choosing one follows its console. */
export function VmsView({ id }) {
  const [data, error] = useSnapshot(
    '/api/vms',
    (kind, e) => kind === 'state' || e.resource === 'emulation',
  );
  if (data === undefined) return html`<p class="muted">${error ?? 'Loading…'}</p>`;
  return html`
    <h1>VMs</h1>
    ${
      data.vms.length === 0
        ? html`<p class="empty">
            No VMs: a package's <code>emulation.start</code> command starts one.
          </p>`
        : html`
            <table class="list">
              <thead>
                <tr>
                  <th>VM</th>
                  <th>command</th>
                  <th>state</th>
                  <th>uptime</th>
                  <th>restarts</th>
                  <th>last exit</th>
                </tr>
              </thead>
              <tbody>
                ${data.vms.map(
                  (vm) => html`
                    <tr key=${vm.id} data-vm=${vm.id} class=${vm.id === id ? 'current' : ''}>
                      <td>
                        <a
                          href="#/vms/${encodeURIComponent(vm.id)}"
                          aria-current=${vm.id === id ? 'page' : undefined}
                          >${vm.id}</a
                        >
                      </td>
                      <td>${vm.package}/${vm.command}</td>
                      <td>
                        <span class="badge ${vm.running ? 'state-running' : 'state-skipped'}"
                          >${vm.running ? 'running' : 'stopped'}</span
                        >${vm.supervision && vm.supervision !== 'running' ? html` <span class="muted small">${vm.supervision}</span>` : null}
                      </td>
                      <td>
                        ${vm.running && vm.upSince ? html`${duration(Date.now() - Date.parse(vm.upSince))} <span class="muted small">since ${clock(vm.upSince)}</span>` : '—'}
                      </td>
                      <td>${vm.restarts}</td>
                      <td>
                        ${vm.lastExit ? html`${vm.lastExit.cause} <span class="muted small">${clock(vm.lastExit.at)}</span>` : '—'}
                      </td>
                    </tr>
                  `,
                )}
              </tbody>
            </table>
          `
    }
    ${id !== undefined ? html`<${Console} id=${id} />` : data.vms.length > 0 ? html`<p class="muted">Choose a VM to follow its console.</p>` : null}
  `;
}

/**
 * The fleet's nodes, with heartbeat, capacity and use, and what each has free for VMs under its
 * own agent's policy (none when the daemon runs one host).
 */
export function NodesView() {
  const [data, error] = useSnapshot('/api/nodes', () => false);
  if (data === undefined) return html`<p class="muted">${error ?? 'Loading…'}</p>`;
  return html`
    <h1>Nodes</h1>
    ${
      data.nodes.length === 0
        ? html`<p class="empty">
            No nodes report to this daemon: it runs every command on this host.
          </p>`
        : html`<table class="list">
            <thead>
              <tr>
                <th>node</th>
                <th>state</th>
                <th>last heartbeat</th>
                <th>CPUs</th>
                <th>memory used / total</th>
                <th>disk free</th>
                <th>running</th>
                <th>free for VMs</th>
                <th>resources</th>
              </tr>
            </thead>
            <tbody>
              ${data.nodes.map(
                (n) =>
                  html`<tr key=${n.name}>
                    <td>${n.name}</td>
                    <td>
                      <span
                        class=${`badge ${n.state === 'online' ? 'state-succeeded' : 'state-failed'}`}
                        >${n.state}</span
                      >
                      ${n.offlineSince === undefined ? '' : html` <span class="muted">since ${clock(n.offlineSince)}</span>`}
                    </td>
                    <td>${clock(n.lastHeartbeatAt)}</td>
                    <td>${n.capacity?.cpus ?? '—'}</td>
                    <td>${gib(n.use?.memoryUsedBytes)} / ${gib(n.capacity?.memoryBytes)}</td>
                    <td>${gib(n.capacity?.diskFreeBytes)}</td>
                    <td>
                      ${n.use === undefined ? '—' : `${n.use.running} commands, ${n.use.vms} VMs`}
                    </td>
                    <td data-free-for-vms=${n.name}>${freeForVms(n.freeForVms)}</td>
                    <td>${(n.resources ?? []).join(', ')}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  `;
}

/** Bytes as GiB with one decimal, or a dash. */
function gib(bytes) {
  return typeof bytes === 'number' ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : '—';
}

/** What a node has free for VMs, `8 CPUs, 21.3 GiB`, or a dash when it reports none. */
function freeForVms(free) {
  if (free === undefined) return '—';
  const cpus = Number.isInteger(free.cpus) ? free.cpus : free.cpus.toFixed(1);
  return `${cpus} CPU${free.cpus === 1 ? '' : 's'}, ${gib(free.memoryMib * 1024 ** 2)}`;
}

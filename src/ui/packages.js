// The packages list and one package's graph with the details of the command selected.
import { html } from './html.js';
import { useState } from '/vendor/hooks.mjs';
import { Graph } from './graph.js';
import { useEvents, useSnapshot } from './live.js';
import { duration, stateOrder } from './format.js';

function Counts({ counts }) {
  const states = stateOrder.filter((s) => counts[s] > 0);
  return html`<span class="counts"
    >${states.map(
      (s) => html`<span key=${s} class="badge state-${s}">${counts[s]} ${s}</span>`,
    )}</span
  >`;
}

/** Every package with its state and command counts. */
export function PackagesView() {
  const [data, error] = useSnapshot(
    '/api/packages',
    (kind, e) => kind === 'state' || e.type !== 'refused',
  );
  if (data === undefined) return html`<p class="muted">${error ?? 'Loading…'}</p>`;
  if (data.packages.length === 0) {
    return html`<p class="empty">
      No packages yet: <code>spin apply</code> one and it appears here.
    </p>`;
  }
  return html`
    <h1>Packages</h1>
    <table class="list">
      <thead>
        <tr>
          <th>package</th>
          <th>state</th>
          <th>commands</th>
          <th>file</th>
        </tr>
      </thead>
      <tbody>
        ${data.packages.map(
          (p) => html`
            <tr key=${p.name} data-package=${p.name}>
              <td><a href="#/packages/${encodeURIComponent(p.name)}">${p.name}</a></td>
              <td><span class="badge state-${p.state}">${p.state}</span></td>
              <td><${Counts} counts=${p.counts} /></td>
              <td class="file">${p.file ?? '—'}</td>
            </tr>
          `,
        )}
      </tbody>
    </table>
  `;
}

function Details({ command, onClose }) {
  if (command === undefined) {
    return html`<aside class="details muted">
      Select a command (click it, or Tab to it and press Enter) to see its attempt, duration and
      output.
    </aside>`;
  }
  const c = command;
  const took =
    c.durationMs ?? (c.state === 'running' && c.startedAt ? Date.now() - c.startedAt : undefined);
  return html`
    <aside class="details" aria-live="polite" data-details=${c.id}>
      <header>
        <h2>${c.id}</h2>
        <button type="button" class="close" onClick=${onClose} aria-label="close details">×</button>
      </header>
      <dl>
        <dt>state</dt>
        <dd><span class="badge state-${c.state}">${c.state}</span></dd>
        <dt>action</dt>
        <dd>${c.resource}.${c.action}</dd>
        <dt>attempt</dt>
        <dd>${c.attempt}</dd>
        <dt>duration</dt>
        <dd>${duration(took)}</dd>
        <dt>needs</dt>
        <dd>${c.needs.length > 0 ? c.needs.join(', ') : '—'}</dd>
      </dl>
      ${
        c.reason && (c.state === 'skipped' || c.state === 'cancelled')
          ? html`<h3>Why it did not run</h3>
              <p class="reason">${c.reason}</p>`
          : null
      }
      ${
        c.error
          ? html`<h3>Error</h3>
              <p class="error">${c.error}</p>`
          : null
      }
      ${
        c.outputTail && c.outputTail.length > 0
          ? html`<h3>Output (last ${c.outputTail.length} lines)</h3>
              <pre class="output">${c.outputTail.join('\n')}</pre>`
          : null
      }
    </aside>
  `;
}

/** One package: its graph, coloured by state as events arrive, and the selected command. */
export function PackageView({ name }) {
  const [selected, setSelected] = useState(undefined);
  const path = `/api/packages/${encodeURIComponent(name)}`;
  const [data, error, patch] = useSnapshot(
    path,
    (kind, e) => kind === 'state' || (e.package === name && e.type !== 'refused'),
  );
  // Recolour at once; the snapshot that follows brings errors, durations and output.
  useEvents((kind, e) => {
    if (kind !== 'broker' || e.type !== 'command' || e.package !== name) return;
    patch((d) =>
      d === undefined
        ? d
        : {
            ...d,
            commands: d.commands.map((c) =>
              c.id === e.commandId
                ? {
                    ...c,
                    state: e.to,
                    attempt: e.attempt,
                    ...(e.to === 'running' ? { startedAt: e.at } : {}),
                  }
                : c,
            ),
          },
    );
  });
  if (data === undefined) return html`<p class="muted">${error ?? 'Loading…'}</p>`;
  const command = data.commands.find((c) => c.id === selected);
  return html`
    <div class="package-head">
      <h1>${data.name} <span class="badge state-${data.state}">${data.state}</span></h1>
      <${Counts} counts=${data.counts} />
      ${data.file ? html`<p class="file">${data.file}</p>` : null}
    </div>
    <div class="package-body">
      <div class="graph-wrap">
        <${Graph}
          commands=${data.commands}
          layout=${data.layout}
          selected=${selected}
          onSelect=${setSelected}
        />
      </div>
      <${Details} command=${command} onClose=${() => setSelected(undefined)} />
    </div>
  `;
}

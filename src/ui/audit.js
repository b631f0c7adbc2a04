// The audit log's recent transitions, of every package or of one.
import { html } from './html.js';
import { useSnapshot } from './live.js';
import { clock } from './format.js';

function describe(e) {
  if (e.type === 'refused') return `refused (${e.code}): ${e.reason}`;
  const move = `${e.from ?? '·'} → ${e.to}`;
  const why = e.reason ?? e.error?.message;
  return why ? `${move}: ${why}` : move;
}

/** The last 200 audit events, newest first; `pkg` narrows them to one package. */
export function AuditView({ pkg }) {
  const query = pkg ? `?package=${encodeURIComponent(pkg)}&limit=200` : '?limit=200';
  const [data, error] = useSnapshot(`/api/audit${query}`, (kind) => kind === 'broker');
  const [packages] = useSnapshot(
    '/api/packages',
    (kind, e) => kind === 'broker' && e.type === 'package',
  );
  const choose = (e) => {
    const value = e.currentTarget.value;
    window.location.hash = value ? `#/audit/${encodeURIComponent(value)}` : '#/audit';
  };
  return html`
    <h1>Audit events</h1>
    <label class="filter"
      >Package
      <select onChange=${choose} value=${pkg ?? ''}>
        <option value="">all packages</option>
        ${(packages?.packages ?? []).map((p) => html`<option key=${p.name} value=${p.name}>${p.name}</option>`)}
      </select>
    </label>
    ${
      data === undefined
        ? html`<p class="muted">${error ?? 'Loading…'}</p>`
        : data.events.length === 0
          ? html`<p class="empty">No events${pkg ? ` of ${pkg}` : ''} in the audit log.</p>`
          : html`
              <table class="list audit">
                <thead>
                  <tr>
                    <th>time</th>
                    <th>package</th>
                    <th>command</th>
                    <th>attempt</th>
                    <th>transition</th>
                  </tr>
                </thead>
                <tbody>
                  ${[...data.events].reverse().map(
                    (e, i) => html`
                      <tr key=${i} data-audit-type=${e.type}>
                        <td>${clock(e.at)}</td>
                        <td>${e.name ?? e.packageId}</td>
                        <td>${e.commandId ?? (e.type === 'package' ? '(package)' : '—')}</td>
                        <td>${e.attempt ?? '—'}</td>
                        <td class="state-text-${e.to ?? 'refused'}">${describe(e)}</td>
                      </tr>
                    `,
                  )}
                </tbody>
              </table>
            `
    }
  `;
}

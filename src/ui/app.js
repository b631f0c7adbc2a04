// The web view's shell: a header with the views and the connection state, and a hash router
// (#/packages, #/packages/NAME, #/vms, #/vms/ID, #/audit, #/audit/PACKAGE, #/nodes).
import { render } from '/vendor/preact.mjs';
import { useEffect, useState } from '/vendor/hooks.mjs';
import { html } from './html.js';
import { followStatus } from './live.js';
import { PackagesView, PackageView } from './packages.js';
import { NodesView, VmsView } from './machines.js';
import { AuditView } from './audit.js';

function route(hash) {
  const [view = 'packages', arg] = hash.replace(/^#\/?/, '').split('/');
  return { view, arg: arg === undefined || arg === '' ? undefined : decodeURIComponent(arg) };
}

const views = [
  ['packages', 'Packages'],
  ['vms', 'VMs'],
  ['audit', 'Audit'],
  ['nodes', 'Nodes'],
];

function App() {
  const [where, setWhere] = useState(route(window.location.hash));
  const [link, setLink] = useState('connecting');
  useEffect(() => {
    const onHash = () => setWhere(route(window.location.hash));
    window.addEventListener('hashchange', onHash);
    const unfollow = followStatus(setLink);
    return () => {
      window.removeEventListener('hashchange', onHash);
      unfollow();
    };
  }, []);
  const { view, arg } = where;
  let main;
  if (view === 'packages' && arg !== undefined)
    main = html`<${PackageView} key=${arg} name=${arg} />`;
  else if (view === 'vms') main = html`<${VmsView} id=${arg} />`;
  else if (view === 'audit') main = html`<${AuditView} pkg=${arg} />`;
  else if (view === 'nodes') main = html`<${NodesView} />`;
  else main = html`<${PackagesView} />`;
  return html`
    <header class="top">
      <a class="brand" href="#/packages">spin</a>
      <nav aria-label="views">
        ${views.map(
          ([id, label]) =>
            html`<a key=${id} href="#/${id}" aria-current=${view === id ? 'page' : undefined}
              >${label}</a
            >`,
        )}
      </nav>
      <span class="link link-${link}" role="status" data-link=${link}>${link}</span>
    </header>
    <main>${main}</main>
  `;
}

render(html`<${App} />`, document.getElementById('app'));

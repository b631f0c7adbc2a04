import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import type { Broker } from '../broker/broker.js';
import { SpinError } from '../core/errors.js';
import { wireErrorOf } from '../daemon/agent-session.js';
import { refusalOf, sessionTtlMs, WebAuth } from './web-auth.js';
import { WebEvents } from './web-events.js';
import { WebViews } from './web-views.js';

/** The web view's port when none is given: `spin daemon start --ui`. */
export const defaultUiPort = 7474;

/** Options of the web view. */
export interface WebServerOptions {
  broker: Broker;
  home: string;
  /** The state file whose packages it shows (`$SPIN_HOME/state.json`). */
  statePath: string;
  /** The page's static files (`dist/ui`). */
  staticDir: string;
  /** The daemon's token: whoever holds it may mint login tickets. */
  token: string;
  /** On 127.0.0.1; 0 for any free port. */
  port: number;
  /** The fleet's nodes as the coordinator knows them now (none on one host). */
  nodes?: () => readonly object[];
}

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

const securityHeaders = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * The web view: a static page and its read-only JSON and event routes on 127.0.0.1, for a browser
 * holding a session cookie. Routes:
 *
 *   GET  /login?ticket=T               spends a ticket, sets the cookie, redirects to /
 *   POST /api/tickets                  Bearer <daemon token> → {ticket, url}   (what `spin ui` calls)
 *   GET  /api/packages                 {packages}
 *   GET  /api/packages/:name           a package and its commands
 *   GET  /api/vms                      {vms}
 *   GET  /api/vms/:id/console          {text, size}: the console's tail
 *   GET  /api/audit?package=&limit=    {events}
 *   GET  /api/nodes                    {nodes}: the fleet's nodes, as `spin nodes` (none on one host)
 *   GET  /events                       SSE: broker events, `state`
 *   GET  /events/console?vm=          SSE: `console` (its tail, then what it gains)
 *   GET  /, /*.js, /*.css, /vendor/*   the page
 *
 * Every request must name this listener in its Host; no CORS header is ever sent.
 */
export class WebServer {
  readonly #options: WebServerOptions;
  readonly #auth: WebAuth;
  readonly #views: WebViews;
  readonly #events: WebEvents;
  readonly #server: Server;

  constructor(options: WebServerOptions) {
    this.#options = options;
    this.#auth = new WebAuth(options.token);
    this.#views = new WebViews(options);
    this.#events = new WebEvents({
      broker: options.broker,
      statePath: options.statePath,
      onEvent: (event) => {
        this.#views.note(event);
      },
    });
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        const wire = wireErrorOf(error);
        const status = { not_found: 404, usage: 400, invalid_input: 400 }[wire.code as string];
        if (!res.headersSent) json(res, status ?? 500, { error: wire });
        else res.end();
      });
    });
  }

  /** Listens on 127.0.0.1 and follows the broker. */
  async listen(): Promise<void> {
    await this.#events.start();
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (error: NodeJS.ErrnoException) => {
        reject(
          error.code === 'EADDRINUSE'
            ? new SpinError(
                'invalid_input',
                `the web view's port ${String(this.#options.port)} is in use`,
                {
                  suggestions: ['choose another with --ui-port'],
                },
              )
            : error,
        );
      });
      this.#server.listen(this.#options.port, '127.0.0.1', () => {
        resolve();
      });
    });
  }

  /** The port bound. */
  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** The page's address. */
  get url(): string {
    return `http://127.0.0.1:${String(this.port)}/`;
  }

  /** Ends every stream and stops listening. */
  async close(): Promise<void> {
    this.#events.close();
    await new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
      this.#server.closeAllConnections();
    });
  }

  /** The session cookie's name: ports share cookies, so two daemons' views must not clash. */
  get #cookie(): string {
    return `spin_session_${String(this.port)}`;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const streaming = path === '/events' || path.startsWith('/events/');
    const refusal = refusalOf(req, this.port, method !== 'GET' || streaming);
    if (refusal === 'host') {
      text(res, 421, 'This server answers only to 127.0.0.1 and localhost.');
      return;
    }
    if (refusal === 'origin') {
      json(res, 403, {
        error: { code: 'invalid_input', message: 'cross-origin requests are refused' },
      });
      return;
    }
    if (method === 'POST' && path === '/api/tickets') {
      if (!this.#auth.bearer(req)) {
        json(res, 401, {
          error: { code: 'invalid_input', message: 'the daemon token is required' },
        });
        return;
      }
      const ticket = this.#auth.ticket();
      json(res, 201, { ticket, url: `${this.url}login?ticket=${ticket}` });
      return;
    }
    if (method === 'GET' && path === '/login') {
      const session = this.#auth.redeem(url.searchParams.get('ticket') ?? '');
      if (session === undefined) {
        page(
          res,
          401,
          'This login link was used already or has expired. Run `spin ui` for a new one.',
        );
        return;
      }
      res.writeHead(303, {
        ...securityHeaders,
        location: '/',
        'set-cookie': `${this.#cookie}=${session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${String(sessionTtlMs / 1000)}`,
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }
    if (method === 'GET' && path === '/style.css') {
      // The refusal pages use it too.
      await this.#static(res, path);
      return;
    }
    if (!this.#auth.session(req, this.#cookie)) {
      if (path.startsWith('/api/') || streaming) {
        json(res, 401, { error: { code: 'invalid_input', message: 'log in with `spin ui`' } });
      } else {
        page(res, 401, 'Open the web view with `spin ui`: it prints a one-time login link.');
      }
      return;
    }
    if (method !== 'GET') {
      json(res, 405, { error: { code: 'usage', message: `method ${method} is not allowed here` } });
      return;
    }
    if (path.startsWith('/api/')) {
      res.setHeader('x-spin-seq', String(this.#events.seq));
      await this.#api(res, path, url.searchParams);
    } else if (path === '/events') this.#events.follow(res);
    else if (path === '/events/console') {
      this.#events.followConsole(res, this.#views.consolePath(url.searchParams.get('vm') ?? ''));
    } else await this.#static(res, path);
  }

  async #api(res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    const parts = path
      .split('/')
      .filter((p) => p !== '')
      .map((p) => {
        try {
          return decodeURIComponent(p);
        } catch {
          throw new SpinError('usage', `'${p}' is not a valid path segment`);
        }
      });
    const [, what, id, sub] = parts;
    if (what === 'packages' && parts.length === 2) {
      json(res, 200, { packages: await this.#views.packages() });
    } else if (what === 'packages' && id !== undefined && parts.length === 3) {
      json(res, 200, await this.#views.package(id));
    } else if (what === 'vms' && parts.length === 2) {
      json(res, 200, { vms: await this.#views.vms() });
    } else if (what === 'vms' && id !== undefined && sub === 'console' && parts.length === 4) {
      json(res, 200, this.#views.consoleTail(id));
    } else if (what === 'audit' && parts.length === 2) {
      const limit = Number(query.get('limit') ?? '200');
      const name = query.get('package');
      json(res, 200, {
        events: await this.#views.audit({
          limit: Number.isSafeInteger(limit) && limit > 0 ? Math.min(limit, 5000) : 200,
          ...(name ? { packageName: name } : {}),
        }),
      });
    } else if (what === 'nodes' && parts.length === 2) {
      json(res, 200, { nodes: this.#options.nodes?.() ?? [] });
    } else {
      throw new SpinError('not_found', `no route ${path}`);
    }
  }

  async #static(res: ServerResponse, path: string): Promise<void> {
    const root = this.#options.staticDir;
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    const type = types[extname(file)];
    if (!file.startsWith(root + sep) || type === undefined) {
      text(res, 404, 'Not found.');
      return;
    }
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      text(res, 404, 'Not found.');
      return;
    }
    res.writeHead(200, {
      ...securityHeaders,
      'content-type': type,
      'content-length': body.length,
      'cache-control': path.startsWith('/vendor/') ? 'max-age=86400' : 'no-cache',
    });
    res.end(body);
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    ...securityHeaders,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    'cache-control': 'no-store',
  });
  res.end(data);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { ...securityHeaders, 'content-type': 'text/plain; charset=utf-8' });
  res.end(body + '\n');
}

/** A small HTML page with one message (the refusals a person sees in the browser). */
function page(res: ServerResponse, status: number, message: string): void {
  const escaped = message.replace(/[&<>"]/g, (c) => `&#${String(c.charCodeAt(0))};`);
  res.writeHead(status, { ...securityHeaders, 'content-type': 'text/html; charset=utf-8' });
  res.end(
    `<!doctype html><html lang="en"><meta charset="utf-8"><title>spin</title><link rel="stylesheet" href="/style.css"><main class="message"><h1>spin</h1><p>${escaped}</p></main></html>\n`,
  );
}

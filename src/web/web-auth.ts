import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** How long a login ticket may wait to be used. */
export const ticketTtlMs = 60_000;

/** How long a browser session lasts without a new login. */
export const sessionTtlMs = 12 * 60 * 60 * 1000;

/** Why a request is refused before it reaches a route; each is answered with its own status. */
export type Refusal = 'host' | 'origin' | 'login';

/**
 * The web view's credentials: one-time login tickets (minted for a holder of the daemon's
 * token, as `spin ui` is) exchanged for a session cookie. Tickets are single use, kept in memory,
 * and expire after a minute. A session is its expiry signed with a key derived from the token
 * (HMAC-SHA-256), so it outlives a restart of the daemon: the page reconnects to the new one
 * without a new login. Secrets are compared in constant time.
 */
export class WebAuth {
  readonly #tokenDigest: Buffer;
  readonly #sessionKey: Buffer;
  readonly #tickets = new Map<string, number>();
  readonly #now: () => number;

  constructor(token: string, now: () => number = Date.now) {
    this.#tokenDigest = digest(token);
    this.#sessionKey = createHmac('sha256', token).update('spin web session').digest();
    this.#now = now;
  }

  /** Whether `Authorization: Bearer …` carries the daemon's token. */
  bearer(req: IncomingMessage): boolean {
    const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), this.#tokenDigest);
  }

  /** A new single-use login ticket. */
  ticket(): string {
    const now = this.#now();
    for (const [key, expires] of this.#tickets) if (expires <= now) this.#tickets.delete(key);
    const ticket = randomBytes(24).toString('base64url');
    this.#tickets.set(digest(ticket).toString('hex'), now + ticketTtlMs);
    return ticket;
  }

  /** Spends `ticket`: a new session when it was valid and unused, else undefined. */
  redeem(ticket: string): string | undefined {
    const key = digest(ticket).toString('hex');
    const expires = this.#tickets.get(key);
    this.#tickets.delete(key);
    if (expires === undefined || expires <= this.#now()) return undefined;
    const payload = `${String(this.#now() + sessionTtlMs)}.${randomBytes(12).toString('base64url')}`;
    return `${payload}.${this.#sign(payload)}`;
  }

  /** Whether the request carries a live session in cookie `name`. */
  session(req: IncomingMessage, name: string): boolean {
    const value = cookieOf(req.headers.cookie ?? '', name) ?? '';
    const cut = value.lastIndexOf('.');
    if (cut < 0) return false;
    const payload = value.slice(0, cut);
    const given = Buffer.from(value.slice(cut + 1));
    const expected = Buffer.from(this.#sign(payload));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    return Number(payload.split('.')[0]) > this.#now();
  }

  #sign(payload: string): string {
    return createHmac('sha256', this.#sessionKey).update(payload).digest('base64url');
  }
}

/**
 * Whether a request may be served at all: its Host must name this listener (so a DNS-rebinding
 * page, whose Host is its own name, gets nothing), and a request that changes something or opens
 * the event stream must not come from another site (its Origin, when sent, must be ours, and
 * `Sec-Fetch-Site`, when sent, same-origin or a typed address). A POST must carry an Origin from a
 * browser; one with a bearer token (the CLI) may have none.
 */
export function refusalOf(
  req: IncomingMessage,
  port: number,
  strictOrigin: boolean,
): Refusal | undefined {
  const allowed = [`127.0.0.1:${String(port)}`, `localhost:${String(port)}`];
  if (!allowed.includes((req.headers.host ?? '').toLowerCase())) return 'host';
  const origin = req.headers.origin;
  if (origin !== undefined && !allowed.some((h) => origin.toLowerCase() === `http://${h}`)) {
    return 'origin';
  }
  const site = req.headers['sec-fetch-site'];
  if (strictOrigin && site !== undefined && site !== 'same-origin' && site !== 'none') {
    return 'origin';
  }
  return undefined;
}

function cookieOf(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

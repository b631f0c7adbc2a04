import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

interface Message {
  id?: number;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { message: string };
}

/**
 * A language client over stdio, enough to drive a language server as an editor does: requests
 * with replies, notifications, the server's own requests answered (`workspace/configuration`
 * with `settings`), and the diagnostics it publishes, awaited per document.
 */
export class LspClient {
  readonly #child: ChildProcessWithoutNullStreams;
  #buffer = Buffer.alloc(0);
  #nextId = 1;
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  readonly #diagnostics = new Map<string, unknown[]>();
  readonly #diagnosticWaiters: { uri: string; resolve: (d: unknown[]) => void }[] = [];
  stderr = '';

  constructor(
    command: string,
    args: string[],
    readonly settings: Record<string, unknown>,
  ) {
    this.#child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stdout.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#drain();
    });
    this.#child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
    });
    this.#child.on('exit', () => {
      for (const { reject } of this.#pending.values())
        reject(new Error(`server exited: ${this.stderr}`));
      this.#pending.clear();
    });
  }

  request<T>(method: string, params: unknown): Promise<T> {
    const id = this.#nextId++;
    this.#send({ jsonrpc: '2.0', id, method, params });
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, {
        resolve: (v) => {
          resolve(v as T);
        },
        reject,
      });
    });
  }

  notify(method: string, params: unknown): void {
    this.#send({ jsonrpc: '2.0', method, params });
  }

  /** The next diagnostics the server publishes for `uri` (sent after each change). */
  diagnostics(uri: string): Promise<unknown[]> {
    return new Promise((resolve) => {
      this.#diagnosticWaiters.push({ uri, resolve });
    });
  }

  async close(): Promise<void> {
    await this.request('shutdown', null).catch(() => undefined);
    this.notify('exit', null);
    this.#child.kill();
  }

  #send(message: object): void {
    const body = Buffer.from(JSON.stringify(message), 'utf8');
    this.#child.stdin.write(`Content-Length: ${String(body.length)}\r\n\r\n`);
    this.#child.stdin.write(body);
  }

  #drain(): void {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(
        /Content-Length: (\d+)/i.exec(this.#buffer.subarray(0, end).toString())?.[1],
      );
      if (this.#buffer.length < end + 4 + length) return;
      const body = this.#buffer.subarray(end + 4, end + 4 + length).toString('utf8');
      this.#buffer = this.#buffer.subarray(end + 4 + length);
      this.#handle(JSON.parse(body) as Message);
    }
  }

  #handle(message: Message): void {
    if (message.id !== undefined && message.method === undefined) {
      const waiter = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error) waiter?.reject(new Error(message.error.message));
      else waiter?.resolve(message.result);
      return;
    }
    if (message.method === 'textDocument/publishDiagnostics') {
      const { uri, diagnostics } = message.params as { uri: string; diagnostics: unknown[] };
      this.#diagnostics.set(uri, diagnostics);
      const index = this.#diagnosticWaiters.findIndex((w) => w.uri === uri);
      if (index >= 0) this.#diagnosticWaiters.splice(index, 1)[0]?.resolve(diagnostics);
      return;
    }
    if (message.id !== undefined) {
      // A request of the server's: configuration gets the settings, anything else an empty answer.
      const result =
        message.method === 'workspace/configuration'
          ? (message.params as { items: { section?: string }[] }).items.map((item) =>
              item.section === undefined ? this.settings : (this.settings[item.section] ?? null),
            )
          : null;
      this.#send({ jsonrpc: '2.0', id: message.id, result });
    }
  }
}

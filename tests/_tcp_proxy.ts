/**
 * A TCP proxy for tests that can black-hole its connections: bytes keep being read from
 * both sides (so neither kernel sees a problem) but are dropped, as on a network path
 * that silently died. The sockets stay open: a half-open connection.
 *
 * @module
 */

/** A TCP proxy on 127.0.0.1 and a free port, forwarding to `127.0.0.1:targetPort`. */
export class TcpProxy {
  readonly port: number;
  #listener: Deno.TcpListener;
  #targetPort: number;
  #conns = new Set<Deno.TcpConn>();
  #blackholed = false;
  #accepting: Promise<void>;

  constructor(targetPort: number) {
    this.#targetPort = targetPort;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#accepting = this.#accept();
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
        this.#conns.add(client);
        this.#conns.add(upstream);
        void this.#pipe(client, upstream);
        void this.#pipe(upstream, client);
      }
    } catch {
      // listener closed
    }
  }

  async #pipe(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        if (this.#blackholed) continue;
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch {
      // a side closed
    }
    if (!this.#blackholed) {
      for (const c of [from, to]) this.#closeConn(c);
    }
  }

  #closeConn(c: Deno.TcpConn): void {
    if (!this.#conns.delete(c)) return;
    try {
      c.close();
    } catch {
      // already closed
    }
  }

  /** From now on every byte in either direction is dropped; connections stay open. */
  blackhole(): void {
    this.#blackholed = true;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const c of [...this.#conns]) this.#closeConn(c);
  }
}

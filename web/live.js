/**
 * The realtime channel in the page: one `EventSource` on `/api/v1/stream`, resumed after a
 * lost connection from the last event id, with a banner while the connection is down.
 * @module
 */

/**
 * @typedef {{global_position: number, stream_id: string, stream_version: number,
 *   type: string, data: any, recorded_at: string}} LogEvent
 */

/** The live connection. Panels subscribe with `on` and `onResync`. */
export class Live {
  /**
   * @param {() => string | null} token the API token
   * @param {{banner: HTMLElement, indicator: HTMLElement}} ui
   */
  constructor(token, ui) {
    this.token = token;
    this.ui = ui;
    /** @type {Set<(e: LogEvent) => void>} */
    this.listeners = new Set();
    /** @type {Set<() => void>} */
    this.resyncListeners = new Set();
    this.source = null;
    this.lastId = null;
    this.retryTimer = null;
    this.connected = false;
    this.everConnected = false;
  }

  /** Listens to every log event; returns the removal function. @param {(e: LogEvent) => void} fn */
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Called after a reconnection (or a reset): reload what is shown. @param {() => void} fn */
  onResync(fn) {
    this.resyncListeners.add(fn);
    return () => this.resyncListeners.delete(fn);
  }

  /** Opens the channel (after the last event id seen, if any). */
  start() {
    this.stop();
    const params = new URLSearchParams({ token: this.token() ?? "" });
    if (this.lastId !== null) params.set("after", this.lastId);
    const source = new EventSource(`/api/v1/stream?${params}`);
    this.source = source;
    source.addEventListener("ready", (m) => {
      const wasDown = !this.connected;
      this.lastId = m.lastEventId || this.lastId;
      this.#setConnected(true);
      if (wasDown && this.everConnected) this.#resync();
      this.everConnected = true;
    });
    source.addEventListener("reset", (m) => {
      this.lastId = m.lastEventId;
      this.#resync();
    });
    source.addEventListener("message", (m) => {
      this.lastId = m.lastEventId;
      let event;
      try {
        event = JSON.parse(m.data);
      } catch {
        return;
      }
      for (const fn of this.listeners) {
        try {
          fn(event);
        } catch (error) {
          console.error(error);
        }
      }
    });
    source.addEventListener("error", () => {
      this.#setConnected(false);
      // The browser retries by itself while CONNECTING; a refused answer (503 while the
      // orchestrator starts, 401) closes the source: retry from the last id ourselves.
      if (source.readyState === EventSource.CLOSED && this.source === source) {
        this.retryTimer = setTimeout(async () => {
          this.retryTimer = null;
          // A refused token signs out (api() announces a 401); anything else: retry.
          const res = await fetch("/api/v1/metrics/dashboard", {
            headers: { authorization: `Bearer ${this.token() ?? ""}` },
          }).catch(() => null);
          await res?.body?.cancel();
          if (res?.status === 401) dispatchEvent(new CustomEvent("unauthorized"));
          else if (this.source === source) this.start();
        }, 2000);
      }
    });
  }

  /** Closes the channel. */
  stop() {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.source?.close();
    this.source = null;
  }

  #resync() {
    for (const fn of this.resyncListeners) {
      try {
        fn();
      } catch (error) {
        console.error(error);
      }
    }
  }

  #setConnected(up) {
    this.connected = up;
    const { banner, indicator } = this.ui;
    indicator.textContent = up ? "live" : "offline";
    indicator.dataset.state = up ? "live" : "offline";
    if (up) {
      banner.hidden = true;
      banner.textContent = "";
    } else if (this.everConnected) {
      banner.hidden = false;
      banner.textContent = "Connection to the orchestrator lost — reconnecting… " +
        "(the view resumes where it stopped)";
    }
  }
}

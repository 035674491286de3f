// A SAMP Web Profile client: registers this browser page with the user's desktop hub
// (http://localhost:21012/) and long-polls for callbacks.
import { XmlRpcFault, decodeResponse, encodeCall } from "./xmlrpc.js";

export const DEFAULT_HUB_URL = "http://localhost:21012/";

// Why the bridge could not reach or join the hub; `kind` is what the kernel shows.
export class SampBridgeError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "SampBridgeError";
    this.kind = kind; // "no-hub" | "blocked" | "refused" | "hub-error"
  }
}

// Local Network Access (Chromium): a request must name the address space it goes to, and
// a hub on this computer (localhost, 127.x, ::1) is "loopback", not "local": naming it
// "local" is refused even when the user allowed the page in.
export function targetAddressSpace(url) {
  let host = "";
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  } catch (_) {
    return "local";
  }
  return host === "localhost" || host.endsWith(".localhost") || /^127\./.test(host) || host === "::1"
    ? "loopback"
    : "local";
}

async function localNetworkPermission() {
  // Chromium's Local Network Access permission; unknown elsewhere.
  for (const name of ["loopback-network", "local-network-access", "local-network"]) {
    try {
      const status = await navigator.permissions.query({ name });
      return status.state;
    } catch (_) {
      // not a permission this browser knows
    }
  }
  return "unknown";
}

export class SampWebClient {
  constructor(hubUrl = DEFAULT_HUB_URL) {
    this.hubUrl = hubUrl;
    this.privateKey = null;
    this.selfId = null;
    this.hubId = null;
    this.polling = false;
  }

  async rpc(method, params, { timeoutMs = 0 } = {}) {
    const controller = new AbortController();
    const timer = timeoutMs ? setTimeout(() => controller.abort(), timeoutMs) : null;
    let response;
    try {
      response = await fetch(this.hubUrl, {
        method: "POST",
        headers: { "Content-Type": "text/xml" },
        body: encodeCall(method, params),
        signal: controller.signal,
        // The hub is on the user's own machine: say so for Local Network Access.
        targetAddressSpace: targetAddressSpace(this.hubUrl),
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      if ((await localNetworkPermission()) === "denied") {
        throw new SampBridgeError(
          "blocked",
          "The browser blocked this page's access to the local network, so it cannot reach " +
            `the SAMP hub at ${this.hubUrl}. Allow "local network access" for this site ` +
            "in the browser's site settings, then reconnect.",
        );
      }
      throw new SampBridgeError(
        "no-hub",
        `No SAMP hub answers at ${this.hubUrl}. Start TOPCAT or Aladin on this computer ` +
          "(their hub includes the Web Profile), then reconnect. If one is running, the " +
          'browser may be blocking access to the local network: allow "local network ' +
          'access" for this site.',
      );
    } finally {
      if (timer) clearTimeout(timer);
    }
    if (!response.ok) {
      throw new SampBridgeError("hub-error", `the SAMP hub answered HTTP ${response.status}`);
    }
    return decodeResponse(await response.text());
  }

  async call(method, ...params) {
    return this.rpc(`samp.webhub.${method}`, [this.privateKey, ...params]);
  }

  async register(name, metadata) {
    let info;
    try {
      info = await this.rpc("samp.webhub.register", [{ "samp.name": name }]);
    } catch (err) {
      if (err instanceof XmlRpcFault) {
        throw new SampBridgeError(
          "refused",
          `The SAMP hub refused to register ${name}: ${err.message}. Accept the ` +
            "registration in the hub's dialog (TOPCAT/Aladin ask before letting a web page in), " +
            "then reconnect.",
        );
      }
      throw err;
    }
    this.privateKey = info["samp.private-key"];
    this.selfId = info["samp.self-id"];
    this.hubId = info["samp.hub-id"];
    await this.call("declareMetadata", metadata);
    await this.call("allowReverseCallbacks", "1");
    return info;
  }

  async clients() {
    // {id: {name, subscriptions}} of every other client (not the hub, not us).
    const ids = await this.call("getRegisteredClients");
    const out = {};
    for (const id of ids) {
      if (id === this.hubId || id === this.selfId) continue;
      const [meta, subs] = await Promise.all([
        this.call("getMetadata", id),
        this.call("getSubscriptions", id),
      ]);
      out[id] = { name: meta["samp.name"] ?? id, subscriptions: Object.keys(subs ?? {}) };
    }
    return out;
  }

  // Long-poll the hub; onCallback({"samp.methodName", "samp.params"}) for each.
  async poll(onCallback, onError) {
    this.polling = true;
    while (this.polling && this.privateKey) {
      try {
        const callbacks = await this.call("pullCallbacks", "10");
        for (const cb of callbacks) await onCallback(cb);
      } catch (err) {
        if (!this.polling) return;
        onError(err);
        return;
      }
    }
  }

  async unregister() {
    this.polling = false;
    if (!this.privateKey) return;
    try {
      await this.call("unregister");
    } finally {
      this.privateKey = null;
    }
  }
}

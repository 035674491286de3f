// Built by widgets/samp_bridge/build.py from widgets/samp_bridge/*.js: do not edit.

// ---- xmlrpc.js ----
// XML-RPC as the SAMP Web Profile uses it: strings, lists and maps (structs).
// Integers, booleans and doubles are read too, because hubs send them in faults.

export class XmlRpcFault extends Error {
  constructor(code, message) {
    super(message);
    this.name = "XmlRpcFault";
    this.code = code;
  }
}

function escapeXml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;");
}

export function encodeValue(value) {
  if (Array.isArray(value)) {
    return `<value><array><data>${value.map(encodeValue).join("")}</data></array></value>`;
  }
  if (value !== null && typeof value === "object") {
    const members = Object.entries(value)
      .map(([k, v]) => `<member><name>${escapeXml(k)}</name>${encodeValue(v)}</member>`)
      .join("");
    return `<value><struct>${members}</struct></value>`;
  }
  // SAMP sends everything else as strings (numbers included).
  return `<value><string>${escapeXml(value ?? "")}</string></value>`;
}

export function encodeCall(method, params) {
  const body = params.map((p) => `<param>${encodeValue(p)}</param>`).join("");
  return `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${body}</params></methodCall>`;
}

function childElements(node) {
  return Array.from(node.childNodes).filter((n) => n.nodeType === 1);
}

export function decodeValue(valueNode) {
  const typed = childElements(valueNode)[0];
  if (!typed) return valueNode.textContent; // bare <value>text</value> is a string
  switch (typed.tagName) {
    case "string":
      return typed.textContent;
    case "int":
    case "i4":
    case "i8":
    case "double":
      return Number(typed.textContent);
    case "boolean":
      return typed.textContent.trim() === "1";
    case "nil":
      return null;
    case "array": {
      const data = childElements(typed)[0];
      return data ? childElements(data).map(decodeValue) : [];
    }
    case "struct": {
      const out = {};
      for (const member of childElements(typed)) {
        const [nameNode, valNode] = childElements(member);
        out[nameNode.textContent] = decodeValue(valNode);
      }
      return out;
    }
    default:
      return typed.textContent;
  }
}

export function decodeResponse(xmlText) {
  const doc = new DOMParser().parseFromString(xmlText, "text/xml");
  const fault = doc.getElementsByTagName("fault")[0];
  if (fault) {
    const info = decodeValue(childElements(fault)[0]);
    throw new XmlRpcFault(info.faultCode, String(info.faultString ?? "XML-RPC fault"));
  }
  const value = doc.querySelector("methodResponse > params > param > value");
  if (!value) throw new Error("the SAMP hub sent an answer that is not XML-RPC");
  return decodeValue(value);
}

// ---- webclient.js ----
// A SAMP Web Profile client: registers this browser page with the user's desktop hub
// (http://localhost:21012/) and long-polls for callbacks.

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

// ---- relay.js ----
// Relays SAMP traffic between a kernel (anywidget model messages) and the desktop hub.
//
// kernel -> browser: {op: "call", tag, recipient, message} | {op: "reply", msg_id, response}
//                    | {op: "connect"} | {op: "disconnect"}
// browser -> kernel: {op: "status", state, kind, message} | {op: "clients", clients, self_id}
//                    | {op: "response", responder, tag, response}
//                    | {op: "incoming", sender, msg_id, mtype, params}

export const URL_PREFIX = "ctanb-jupyter:";
const HUB_EVENT = "samp.hub.event.";

// The Jupyter server's base URL as the desktop reaches it: the page's own origin.
export function jupyterBaseUrl() {
  const config = document.getElementById("jupyter-config-data");
  let base = "/";
  if (config) {
    try {
      base = JSON.parse(config.textContent).baseUrl || "/";
    } catch (_) {
      // keep "/"
    }
  }
  return new URL(base, window.location.origin).href;
}

// Replace every "ctanb-jupyter:<path>" string by an absolute URL under baseUrl.
export function resolveUrls(value, baseUrl) {
  if (typeof value === "string") {
    return value.startsWith(URL_PREFIX)
      ? new URL(value.slice(URL_PREFIX.length), baseUrl).href
      : value;
  }
  if (Array.isArray(value)) return value.map((v) => resolveUrls(v, baseUrl));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveUrls(v, baseUrl)]));
  }
  return value;
}

export class Relay extends EventTarget {
  constructor(model, { baseUrl } = {}) {
    super();
    this.model = model;
    this.baseUrl = baseUrl || model.get("base_url") || jupyterBaseUrl();
    this.client = null;
    this.status = { state: "idle", kind: "", message: "not connected" };
    this._onMessage = (msg) => this.fromKernel(msg);
    model.on("msg:custom", this._onMessage);
  }

  setStatus(state, kind, message) {
    this.status = { state, kind, message };
    this.model.send({ op: "status", ...this.status });
    this.dispatchEvent(new Event("status"));
  }

  async connect() {
    await this.disconnect();
    const name = this.model.get("app_name") || "ctanb";
    this.client = new SampWebClient(this.model.get("hub_url") || DEFAULT_HUB_URL);
    this.setStatus("connecting", "", `asking the SAMP hub to let ${name} in…`);
    try {
      await this.client.register(name, {
        "samp.name": name,
        "samp.description.text": "ctanb notebook (browser bridge)",
      });
      const mtypes = this.model.get("subscriptions") || [];
      const subs = Object.fromEntries([...mtypes, `${HUB_EVENT}*`, "samp.app.ping"].map((m) => [m, {}]));
      await this.client.call("declareSubscriptions", subs);
      await this.sendClients();
    } catch (err) {
      this.client = null;
      const kind = err instanceof SampBridgeError ? err.kind : "hub-error";
      this.setStatus("error", kind, err.message);
      return;
    }
    this.setStatus("connected", "", `registered with the SAMP hub as ${name}`);
    this.client.poll(
      (cb) => this.fromHub(cb),
      (err) => this.setStatus("error", err.kind || "hub-error", `lost the SAMP hub: ${err.message}`),
    );
  }

  async disconnect() {
    const client = this.client;
    this.client = null;
    if (client) {
      try {
        await client.unregister();
      } catch (_) {
        // the hub may already be gone
      }
      this.setStatus("idle", "", "disconnected from the SAMP hub");
    }
  }

  async sendClients() {
    const clients = await this.client.clients();
    this.model.send({ op: "clients", clients, self_id: this.client.selfId });
  }

  async fromKernel(msg) {
    if (msg.op === "connect") return this.connect();
    if (msg.op === "disconnect") return this.disconnect();
    if (!this.client) {
      if (msg.op === "call") this.undelivered(msg, "the browser bridge is not connected to a hub");
      return;
    }
    if (msg.op === "call") {
      const message = resolveUrls(msg.message, this.baseUrl);
      try {
        await this.client.call("call", msg.recipient, msg.tag, message);
      } catch (err) {
        this.undelivered(msg, err.message);
      }
    } else if (msg.op === "reply") {
      await this.client.call("reply", msg.msg_id, msg.response);
    }
  }

  undelivered(msg, text) {
    this.model.send({
      op: "response",
      responder: msg.recipient,
      tag: msg.tag,
      response: { "samp.status": "samp.error", "samp.error": { "samp.errortxt": text } },
    });
  }

  async fromHub(callback) {
    const method = callback["samp.methodName"];
    const params = callback["samp.params"];
    if (method === "receiveResponse") {
      const [responder, tag, response] = params;
      this.model.send({ op: "response", responder, tag, response });
      return;
    }
    const isCall = method === "receiveCall";
    const [sender, msgId, message] = isCall ? params : [params[0], null, params[1]];
    const mtype = message["samp.mtype"];
    if (mtype.startsWith(HUB_EVENT) || mtype === "samp.app.ping") {
      if (isCall) await this.client.call("reply", msgId, { "samp.status": "samp.ok", "samp.result": {} });
      if (mtype.startsWith(HUB_EVENT) && mtype !== `${HUB_EVENT}shutdown`) await this.sendClients();
      return;
    }
    this.model.send({ op: "incoming", sender, msg_id: msgId, mtype, params: message["samp.params"] || {} });
  }
}

// ---- index.js ----
// anywidget entry point of ctanb's SAMP browser bridge.
// One Relay per model (not per view): a notebook shown twice registers once.

const relays = new WeakMap();

function relayFor(model) {
  let relay = relays.get(model);
  if (!relay) {
    relay = new Relay(model);
    relays.set(model, relay);
    relay.connect();
  }
  return relay;
}

function render({ model, el }) {
  const relay = relayFor(model);
  const box = document.createElement("div");
  box.className = "ctanb-samp-bridge";
  const text = document.createElement("span");
  const button = document.createElement("button");
  button.textContent = "Reconnect";
  button.onclick = () => relay.connect();
  box.append(text, " ", button);
  el.appendChild(box);
  const colours = { connected: "#2e7d32", error: "#c62828", connecting: "#f9a825", idle: "#757575" };
  const show = () => {
    const { state, message } = relay.status;
    text.textContent = `SAMP: ${message}`;
    text.style.color = colours[state] || "inherit";
    box.dataset.state = state;
    button.style.display = state === "connecting" ? "none" : "";
  };
  relay.addEventListener("status", show);
  show();
  return () => relay.removeEventListener("status", show);
}

export default { render };

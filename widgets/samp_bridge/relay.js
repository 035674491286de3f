// Relays SAMP traffic between a kernel (anywidget model messages) and the desktop hub.
//
// kernel -> browser: {op: "call", tag, recipient, message} | {op: "reply", msg_id, response}
//                    | {op: "connect"} | {op: "disconnect"}
// browser -> kernel: {op: "status", state, kind, message} | {op: "clients", clients, self_id}
//                    | {op: "response", responder, tag, response}
//                    | {op: "incoming", sender, msg_id, mtype, params}
import { SampBridgeError, SampWebClient, DEFAULT_HUB_URL } from "./webclient.js";

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

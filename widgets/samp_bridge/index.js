// anywidget entry point of ctanb's SAMP browser bridge.
// One Relay per model (not per view): a notebook shown twice registers once.
import { Relay } from "./relay.js";

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

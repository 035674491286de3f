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

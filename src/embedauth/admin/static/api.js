// The management API over fetch: JSON in, JSON out, RFC 9457 problem details as ``Problem``.

/** An answer that is not a success: the problem details the API sent (status, title, detail, errors). */
export class Problem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.title = body.title || "";
    this.detail = body.detail || "";
    this.errors = Array.isArray(body.errors) ? body.errors : [];
  }
}

export class Api {
  /** ``base``: where the API is (``/admin/api``); ``token``: a bearer token, or null for the app's own sign-in. */
  constructor(base) {
    this.base = base.replace(/\/$/, "");
    this.token = null;
    this.onUnauthorized = () => {};
  }

  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (method === "POST" || method === "PATCH") {
      headers["Content-Type"] = "application/json"; // every POST and PATCH, so no cross-site form can call it
      init.body = JSON.stringify(body || {});
    }
    let response;
    try {
      response = await fetch(this.base + path, init);
    } catch {
      throw new Problem(0, { title: "No connection", detail: "The server could not be reached. Try again." });
    }
    if (response.status === 204) return null;
    let answer = {};
    try {
      answer = await response.json();
    } catch {
      answer = {};
    }
    if (response.ok) return answer;
    if (response.status === 401) this.onUnauthorized();
    throw new Problem(response.status, answer);
  }

  get(path, query = {}) {
    const entries = Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== "");
    const search = entries.length ? `?${new URLSearchParams(entries)}` : "";
    return this.request("GET", path + search);
  }
  post(path, body) { return this.request("POST", path, body); }
  patch(path, body) { return this.request("PATCH", path, body); }
  delete(path) { return this.request("DELETE", path); }

  /** A token for an admin registration (``client_credentials``, RFC 6749 §4.4, secret in Basic). */
  async signIn(tokenEndpoint, clientId, clientSecret) {
    const encode = (s) => encodeURIComponent(s).replace(/%20/g, "+"); // §2.3.1: form-encode, then Basic
    const basic = btoa(unescape(encodeURIComponent(`${encode(clientId)}:${encode(clientSecret)}`)));
    let response;
    try {
      response = await fetch(tokenEndpoint, {
        method: "POST",
        headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
        body: "grant_type=client_credentials",
        credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new Problem(0, { detail: "The server could not be reached. Try again." });
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = answer.error === "invalid_client" ? "That client ID and secret were not accepted." :
        answer.error_description || "Signing in failed.";
      throw new Problem(response.status, { detail });
    }
    this.token = answer.access_token;
    return answer;
  }
}

/** A registration's path, with the client ID escaped. */
export const reg = (clientId, rest = "") => `/registrations/${encodeURIComponent(clientId)}${rest}`;

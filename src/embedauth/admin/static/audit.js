// The audit view: the admin's sites' trail, newest first, filtered by client ID and paged; and the
// pieces the registration details reuse (the table, a notice in words).
import { toast } from "./dialogs.js";
import { $, debounce, fill, h } from "./dom.js";

const PAGE = 50;

export class AuditView {
  constructor(api) {
    this.api = api;
    this.offset = 0;
    $("#audit-client-id").addEventListener("input", debounce(() => { this.offset = 0; this.load(); }, 250));
    $("#audit-newer").addEventListener("click", () => { this.offset = Math.max(0, this.offset - PAGE); this.load(); });
    $("#audit-older").addEventListener("click", () => { this.offset += PAGE; this.load(); });
  }

  start(session) {
    this.session = session;
    this.offset = 0;
    $("#audit-client-id").value = "";
  }

  async load() {
    try {
      const clientId = $("#audit-client-id").value.trim();
      const page = await this.api.get("/audit", { client_id: clientId, offset: this.offset, limit: PAGE });
      fill($("#audit-body"), auditRows(page.items, true));
      $("#audit-empty").hidden = page.items.length > 0;
      const first = page.total ? this.offset + 1 : 0;
      fill($("#audit-pager-text"), `${first}–${this.offset + page.items.length} of ${page.total}`);
      $("#audit-newer").disabled = this.offset === 0;
      $("#audit-older").disabled = this.offset + page.items.length >= page.total;
    } catch (problem) {
      toast(problem.message);
    }
  }
}

function outcome(record) {
  const kind = record.outcome === "success" ? "on" : record.outcome === "refused" ? "soon" : "off";
  return [h("span", { class: `pill ${kind}` }, record.outcome), record.reason ? h("span", { class: "tenant" }, record.reason) : null];
}

function auditRows(items, withRegistration) {
  return items.map((a) => h("tr", {},
    h("td", { "data-label": "When" }, h("time", { datetime: a.at, title: a.at }, a.at.replace("T", " ").slice(0, 19))),
    h("td", { "data-label": "Who" }, a.actor),
    h("td", { "data-label": "What" }, a.action),
    withRegistration ? h("td", { "data-label": "Registration" }, a.client_id ? h("code", {}, a.client_id) : a.target || "—") : null,
    h("td", { "data-label": "Outcome" }, outcome(a)),
    h("td", { "data-label": "From" }, a.source || "—")));
}

/** A compact audit table (the registration details' recent activity). */
export function auditTable(items, withRegistration) {
  const heads = ["When", "Who", "What", ...(withRegistration ? ["Registration"] : []), "Outcome", "From"];
  return h("table", { class: "grid compact" },
    h("caption", { class: "visually-hidden" }, "Recent activity"),
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, auditRows(items, withRegistration)));
}

/** "Secret 3f9… expires in 7 days (2026-12-09 10:00 UTC).", from a notice's record. */
export function describeNotice(record) {
  const d = record.detail || {};
  const what = { secret: "A secret", certificate: "A certificate" }[d.credential] || "The registration";
  const when = d.expires_at ? ` (${String(d.expires_at).replace("T", " ").slice(0, 16)} UTC)` : "";
  if (record.action === "notice.expired") return `${what} expired${when}.`;
  const days = typeof d.days_left === "number" ? ` in ${d.days_left} day${d.days_left === 1 ? "" : "s"}` : " soon";
  return `${what} expires${days}${when}.`;
}

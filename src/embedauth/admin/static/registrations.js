// The registrations view: the grid (sort, filter, pages, select for bulk delete), the expiry
// banner, the create and edit dialog, and one registration's details with its credentials.
import { reg } from "./api.js";
import { confirm, lifetime, run, showProblem, showSecret, toast } from "./dialogs.js";
import { auditTable, describeNotice } from "./audit.js";
import { $, $$, copy, dateCell, daysLeft, debounce, expiresIn, fill, h, usedAgo } from "./dom.js";
import { ScopePicker } from "./picker.js";

const PAGE = 25;
const SOON_DAYS = 30;

export class RegistrationsView {
  constructor(api) {
    this.api = api;
    this.items = [];
    this.picker = new ScopePicker(api);
    this.wire();
  }

  /** A new sign-in: its tenants, and the grid from the start. */
  start(session) {
    this.session = session;
    this.state = { sort: "created_at", order: "desc", name: "", tenant: "", expiring: false, offset: 0 };
    this.selected = new Set();
    $("#filter-name").value = "";
    $("#filter-expiring").checked = false;
    const tenants = session.tenants;
    fill($("#filter-tenant"), h("option", { value: "" }, "All sites"), tenants.map((t) => h("option", { value: t }, t)));
    $("#filter-tenant-field").hidden = tenants.length < 2;
    fill($("#edit-tenant"), tenants.map((t) => h("option", { value: t }, t)));
  }

  wire() {
    const filter = debounce(() => { this.state.offset = 0; this.load(); }, 200);
    $("#filter-name").addEventListener("input", (event) => { this.state.name = event.target.value.trim(); filter(); });
    $("#sort-by").addEventListener("change", (event) => {
      [this.state.sort, this.state.order] = event.target.value.split(" ");
      this.state.offset = 0;
      this.load();
    });
    $("#filter-expiring").addEventListener("change", (event) => this.showExpiring(event.target.checked));
    $("#expiry-banner-show").addEventListener("click", () => this.showExpiring(true));
    $("#filter-tenant").addEventListener("change", (event) => { this.state.tenant = event.target.value; this.state.offset = 0; this.load(); });
    $("#page-previous").addEventListener("click", () => { this.state.offset = Math.max(0, this.state.offset - PAGE); this.load(); });
    $("#page-next").addEventListener("click", () => { this.state.offset += PAGE; this.load(); });
    $("#new-registration").addEventListener("click", () => this.openEditor(null));
    $("#delete-selected").addEventListener("click", () => this.deleteSelected());
    $("#select-all").addEventListener("change", (event) => {
      for (const r of this.selectable()) event.target.checked ? this.selected.add(r.client_id) : this.selected.delete(r.client_id);
      this.drawRows();
    });
    for (const th of $$("#grid th[data-sort]")) {
      const label = th.textContent;
      fill(th, h("button", { type: "button", class: "sort", onclick: () => this.sortBy(th.dataset.sort) }, label));
    }
    for (const radio of $$("input[name=customer_kind]")) radio.addEventListener("change", () => this.customerKindChanged());
    $("#edit-form").addEventListener("submit", (event) => { event.preventDefault(); this.saveEditor(); });
  }

  showExpiring(on) {
    this.state.expiring = on;
    $("#filter-expiring").checked = on;
    if (on) { this.state.sort = "expires_at"; this.state.order = "asc"; }
    this.state.offset = 0;
    this.load();
  }

  sortBy(key) {
    if (this.state.sort === key) this.state.order = this.state.order === "asc" ? "desc" : "asc";
    else { this.state.sort = key; this.state.order = "asc"; }
    this.state.offset = 0;
    this.load();
  }

  async load() {
    const s = this.state;
    try {
      const [page, soon] = await Promise.all([
        this.api.get("/registrations", {
          name_contains: s.name, tenant: s.tenant, sort: s.sort, order: s.order,
          offset: s.offset, limit: PAGE, expires_within_days: s.expiring ? SOON_DAYS : undefined,
        }),
        this.api.get("/registrations", { tenant: s.tenant, expires_within_days: SOON_DAYS, limit: 1 }),
      ]);
      if (page.items.length === 0 && s.offset > 0 && page.total > 0) {
        s.offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE); // the last page shrank away
        return this.load();
      }
      this.items = page.items;
      this.total = page.total;
      this.drawBanner(soon.total);
      this.drawRows();
    } catch (problem) {
      toast(problem.message);
    }
  }

  drawBanner(count) {
    $("#expiry-banner").hidden = count === 0;
    fill($("#expiry-banner-text"), count === 1
      ? "1 registration stops working within 30 days (or already has)."
      : `${count} registrations stop working within 30 days (or already have).`);
    $("#expiry-banner-show").hidden = this.state.expiring;
  }

  drawRows() {
    const rows = this.items.map((r) => {
      const left = daysLeft(r.expires_at);
      const status = r.enabled ? h("span", { class: "pill on" }, "Enabled") : h("span", { class: "pill off" }, "Disabled");
      const expiry = h("span", { class: left <= 0 ? "pill off" : left <= SOON_DAYS ? "pill soon" : "" }, expiresIn(r.expires_at));
      return h("tr", { dataset: { clientId: r.client_id } },
        h("td", { class: "select" }, h("input", {
          type: "checkbox",
          "aria-label": `Select ${r.name}`,
          checked: this.selected.has(r.client_id),
          disabled: r.client_id === this.session.admin, // not the one this page is signed in with
          title: r.client_id === this.session.admin ? "You are signed in with this registration" : undefined,
          onchange: (event) => {
            event.target.checked ? this.selected.add(r.client_id) : this.selected.delete(r.client_id);
            this.drawSelection();
          },
        })),
        h("td", { "data-label": "Name" }, h("button", { type: "button", class: "link", onclick: () => this.openDetail(r.client_id) }, r.name),
          r.client_id === this.session.admin ? h("span", { class: "tag" }, "signed in with this") : null,
          this.session.tenants.length > 1 ? h("span", { class: "tenant" }, r.tenant) : null),
        h("td", { "data-label": "Client ID" }, h("code", {}, r.client_id)),
        h("td", { "data-label": "Registered" }, dateCell(r.created_at)),
        h("td", { "data-label": "Enabled" }, status),
        h("td", { "data-label": "Last used" }, r.last_used_at ? h("time", { datetime: r.last_used_at, title: r.last_used_at }, usedAgo(r.last_used_at)) : "never"),
        h("td", { "data-label": "Expires" }, r.expires_at ? h("time", { datetime: r.expires_at, title: r.expires_at }, expiry) : expiry));
    });
    fill($("#grid-body"), rows);
    $("#grid-empty").hidden = rows.length > 0;
    for (const th of $$("#grid th[data-sort]")) {
      if (th.dataset.sort === this.state.sort) th.setAttribute("aria-sort", this.state.order === "asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    const first = this.total ? this.state.offset + 1 : 0;
    fill($("#pager-text"), `${first}–${this.state.offset + this.items.length} of ${this.total}`);
    $("#page-previous").disabled = this.state.offset === 0;
    $("#page-next").disabled = this.state.offset + this.items.length >= this.total;
    this.drawSelection();
  }

  drawSelection() {
    const count = this.selected.size;
    const button = $("#delete-selected");
    button.disabled = count === 0;
    fill(button, count ? `Delete selected (${count})` : "Delete selected");
    const all = $("#select-all");
    const selectable = this.selectable();
    const onPage = selectable.filter((r) => this.selected.has(r.client_id)).length;
    all.checked = selectable.length > 0 && onPage === selectable.length;
    all.indeterminate = onPage > 0 && onPage < selectable.length;
    all.disabled = selectable.length === 0;
  }

  /** The registrations on this page that may be deleted in bulk: all but the one signed in with. */
  selectable() {
    return this.items.filter((r) => r.client_id !== this.session.admin);
  }

  async deleteSelected() {
    const ids = [...this.selected];
    const what = ids.length === 1 ? "1 registration" : `${ids.length} registrations`;
    if (!(await confirm(`Delete ${what}?`, "Their secrets and certificates stop working at once. This cannot be undone.", `Delete ${what}`))) return;
    try {
      const answer = await this.api.post("/registrations/delete", { client_ids: ids });
      this.selected.clear();
      toast(`Deleted ${answer.deleted.length}.`);
    } catch (problem) {
      toast(problem.message);
    }
    this.load();
  }

  // ------------------------------------------------------------------ create and edit

  openEditor(registration) {
    this.editing = registration;
    const form = $("#edit-form");
    form.reset();
    showProblem(form, null);
    const creating = registration === null;
    fill($("#edit-title"), creating ? "New registration" : `Edit ${registration.name}`);
    fill($("#edit-submit"), creating ? "Create" : "Save");
    $("#edit-tenant-field").hidden = !creating;
    $("#lifetime-field").hidden = !creating;
    $("#edit-name").value = creating ? "" : registration.name;
    $("#edit-description").value = creating ? "" : registration.description;
    this.picker.set(creating ? [] : registration.scopes);
    const [kind, ids] = creating ? ["all", ""] : splitCustomerScope(registration.customer_scope);
    $(`input[name=customer_kind][value=${kind}]`).checked = true;
    $("#customer-ids").value = ids;
    this.customerKindChanged();
    run($("#edit-dialog"));
    $("#edit-name").focus();
  }

  customerKindChanged() {
    const kind = $("input[name=customer_kind]:checked").value;
    $("#customer-ids-field").hidden = kind === "all";
    fill($("#customer-ids-label"), kind === "groups" ? "Customer group IDs, separated by commas" : "Customer IDs, separated by commas");
  }

  customerScope() {
    const kind = $("input[name=customer_kind]:checked").value;
    if (kind === "all") return "all";
    const ids = $("#customer-ids").value.split(",").map((s) => s.trim()).filter(Boolean);
    return `${kind}:${ids.join(",")}`;
  }

  async saveEditor() {
    const form = $("#edit-form");
    const body = {
      name: $("#edit-name").value,
      description: $("#edit-description").value,
      scopes: this.picker.get(),
      customer_scope: this.customerScope(),
    };
    try {
      if (this.editing === null) {
        body.tenant = $("#edit-tenant").value;
        body.secret_days = Number($("#edit-lifetime").value);
        const created = await this.api.post("/registrations", body);
        $("#edit-dialog").close("ok");
        await showSecret(created);
        this.load();
      } else {
        await this.api.patch(reg(this.editing.client_id), body);
        $("#edit-dialog").close("ok");
        toast("Saved.");
        this.load();
        this.openDetail(this.editing.client_id);
      }
    } catch (problem) {
      const errors = (problem.errors || []).map((e) => ({ ...e, field: e.field === "customer_scope" ? "customer_ids" : e.field.split(".")[0] }));
      showProblem(form, Object.assign(problem, { errors }));
    }
  }

  // ------------------------------------------------------------------ one registration

  async openDetail(clientId) {
    let r;
    try {
      r = await this.api.get(reg(clientId));
    } catch (problem) {
      toast(problem.message);
      return this.load();
    }
    this.drawDetail(r);
    const dialog = $("#detail-dialog");
    if (!dialog.open) {
      dialog.showModal();
      dialog.addEventListener("close", () => this.load(), { once: true });
    }
  }

  /** After a change made in the details: show it, or its problem. */
  async act(clientId, change, done) {
    try {
      const answer = await change();
      if (done) toast(done);
      if (answer && answer.client_secret) await showSecret(answer);
      const dialog = $("#detail-dialog");
      if (!dialog.open) dialog.showModal();
      await this.openDetail(clientId);
    } catch (problem) {
      toast(problem.message);
    }
  }

  drawDetail(r) {
    const id = r.client_id;
    fill($("#detail-title"), r.name);
    const facts = [
      ["Client ID", h("span", { class: "copy-line" }, h("code", {}, id), h("button", {
        type: "button", class: "small", onclick: async (e) => { e.target.textContent = (await copy(id)) ? "Copied" : "Copy failed"; },
      }, "Copy"))],
      ["Site", r.tenant],
      ["Status", r.enabled ? "Enabled" : "Disabled"],
      ["Description", r.description || "—"],
      ["Permissions", r.scopes.length ? h("ul", { class: "chips" }, r.scopes.map((s) => h("li", { class: "chip" }, s))) : "none"],
      ["Customers", describeCustomers(r.customer_scope)],
      ["Registered", dateCell(r.created_at)],
      ["Last used", usedAgo(r.last_used_at)],
      ["Stops working", r.expires_at ? [dateCell(r.expires_at), ` (${expiresIn(r.expires_at)})`] : "never"],
      ["Registration expires", r.registration_expires_at ? dateCell(r.registration_expires_at) : "never (only its credentials expire)"],
    ];
    const actions = h("div", { class: "actions left" },
      h("button", { type: "button", onclick: () => { $("#detail-dialog").close(); this.openEditor(r); } }, "Edit"),
      h("button", { type: "button", onclick: () => this.rotate(r) }, "Generate new secret"),
      r.enabled
        ? h("button", { type: "button", onclick: () => this.act(id, () => this.api.post(reg(id, "/disable")), "Disabled: its tokens are refused.") }, "Disable")
        : h("button", { type: "button", onclick: () => this.act(id, () => this.api.post(reg(id, "/enable")), "Enabled.") }, "Enable"),
      h("button", { type: "button", onclick: () => this.renew(r) }, "Renew"),
      h("button", { type: "button", class: "danger", onclick: () => this.deleteOne(r) }, "Delete"));

    const secrets = h("table", { class: "grid compact" },
      h("caption", { class: "visually-hidden" }, "Secrets"),
      h("thead", {}, h("tr", {}, ["Secret", "Created", "Expires", "Last used", ""].map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Actions"))))),
      h("tbody", {}, r.secrets.map((s) => h("tr", {},
        h("td", { "data-label": "Secret" }, h("code", {}, `${s.hint}…`),
          s.replaced_at ? h("span", { class: "pill soon replaced" }, "replaced: works until it expires") : null),
        h("td", { "data-label": "Created" }, dateCell(s.created_at)),
        h("td", { "data-label": "Expires" }, dateCell(s.expires_at), ` (${expiresIn(s.expires_at)})`),
        h("td", { "data-label": "Last used" }, usedLine(s)),
        h("td", {}, h("button", {
          type: "button", class: "small danger", "aria-label": `Delete secret ${s.hint}`,
          onclick: async () => {
            if (await confirm("Delete this secret?", `Clients using the secret that starts ${s.hint} stop working at once.`, "Delete secret"))
              this.act(id, () => this.api.delete(reg(id, `/secrets/${encodeURIComponent(s.id)}`)), "Secret deleted.");
          },
        }, "Delete"))))));
    const certificates = h("table", { class: "grid compact" },
      h("caption", { class: "visually-hidden" }, "Certificates"),
      h("thead", {}, h("tr", {}, ["Subject", "Thumbprint", "Valid until", "Last used", ""].map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Actions"))))),
      h("tbody", {}, r.certificates.map((c) => h("tr", {},
        h("td", { "data-label": "Subject" }, c.subject),
        h("td", { "data-label": "Thumbprint" }, h("code", { class: "break" }, c.thumbprint)),
        h("td", { "data-label": "Valid until" }, dateCell(c.expires_at), ` (${expiresIn(c.expires_at)})`),
        h("td", { "data-label": "Last used" }, usedLine(c)),
        h("td", {}, h("button", {
          type: "button", class: "small danger", "aria-label": `Remove certificate ${c.subject}`,
          onclick: async () => {
            if (await confirm("Remove this certificate?", `Assertions signed with ${c.subject} stop working at once.`, "Remove certificate"))
              this.act(id, () => this.api.delete(reg(id, `/certificates/${encodeURIComponent(c.id)}`)), "Certificate removed.");
          },
        }, "Remove"))))));
    const upload = h("input", {
      type: "file", id: "certificate-file", accept: ".cer,.crt,.pem,.der",
      onchange: (event) => this.upload(id, event.target),
    });

    fill($("#detail-body"),
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      actions,
      h("section", { "aria-labelledby": "secrets-title" },
        h("div", { class: "heading" }, h("h3", { id: "secrets-title" }, "Client secrets"),
          h("button", { type: "button", onclick: () => this.addSecret(r) }, "Add secret")),
        r.secrets.length ? secrets : h("p", { class: "empty" }, "No secrets.")),
      h("section", { "aria-labelledby": "certificates-title" },
        h("div", { class: "heading" }, h("h3", { id: "certificates-title" }, "Certificates"),
          h("span", { class: "upload" }, h("label", { for: "certificate-file" }, "Upload a certificate (.cer, .pem)"), upload)),
        r.certificates.length ? certificates : h("p", { class: "empty" }, "No certificates.")),
      h("section", { "aria-labelledby": "notices-title" },
        h("h3", { id: "notices-title" }, "Expiry notices sent"), h("div", { id: "detail-notices" }, "…")),
      h("section", { "aria-labelledby": "activity-title" },
        h("h3", { id: "activity-title" }, "Recent activity"), h("div", { id: "detail-activity" }, "…")));
    this.drawActivity(id);
  }

  /** The registration's audit trail: the notices sent to it, and its latest records. */
  async drawActivity(clientId) {
    let items = [];
    try {
      items = (await this.api.get(reg(clientId, "/audit"), { limit: 100 })).items;
    } catch {
      items = null;
    }
    const notices = $("#detail-notices");
    const activity = $("#detail-activity");
    if (!notices || !activity) return; // closed meanwhile
    if (items === null) {
      fill(notices, "Could not load.");
      fill(activity, "Could not load.");
      return;
    }
    const sent = items.filter((a) => a.action.startsWith("notice."));
    fill(notices, sent.length ? h("ul", { class: "plain" }, sent.map((a) => h("li", {}, dateCell(a.at), " ", describeNotice(a))))
      : h("p", { class: "empty" }, "None yet: notices go out 30 and 7 days before a credential expires, and when it does."));
    const recent = items.filter((a) => !a.action.startsWith("notice.")).slice(0, 20);
    fill(activity, recent.length ? auditTable(recent, false) : h("p", { class: "empty" }, "Nothing recorded yet."));
  }

  rotate(r) {
    lifetime({
      title: "Generate a new secret",
      text: "A new secret replaces every current one; clients need the new one.",
      label: "New secret's lifetime",
      action: "Generate new secret",
      grace: true,
      submit: async (days, grace) => {
        const body = grace ? { secret_days: days, grace_seconds: grace } : { secret_days: days };
        const created = await this.api.post(reg(r.client_id, "/rotate-secret"), body);
        const done = grace ? "New secret made; the old ones keep working for the grace period." : "New secret made; the old ones no longer work.";
        setTimeout(() => this.act(r.client_id, async () => created, done));
      },
    });
  }

  addSecret(r) {
    lifetime({
      title: "Add a secret",
      text: "The current secrets keep working, so clients can switch to the new one before the old is deleted.",
      label: "Lifetime",
      action: "Add secret",
      submit: async (days) => {
        const created = await this.api.post(reg(r.client_id, "/secrets"), { secret_days: days });
        setTimeout(() => this.act(r.client_id, async () => created, "Secret added."));
      },
    });
  }

  renew(r) {
    lifetime({
      title: `Renew ${r.name}`,
      text: "The registration's own expiry moves later. Secrets and certificates keep their own dates.",
      label: "Works for",
      action: "Renew",
      submit: async (days) => {
        await this.api.post(reg(r.client_id, "/renew"), { days });
        setTimeout(() => this.act(r.client_id, async () => null, "Renewed."));
      },
    });
  }

  async deleteOne(r) {
    if (!(await confirm(`Delete ${r.name}?`, "Its secrets and certificates stop working at once. This cannot be undone.", "Delete registration"))) return;
    try {
      await this.api.delete(reg(r.client_id));
      this.selected.delete(r.client_id);
      $("#detail-dialog").close();
      toast(`Deleted ${r.name}.`);
    } catch (problem) {
      toast(problem.message);
    }
  }

  async upload(clientId, input) {
    const file = input.files[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const text = new TextDecoder().decode(bytes);
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    const certificate = text.includes("-----BEGIN") ? text : btoa(binary); // PEM as it is, DER in base64
    input.value = "";
    this.act(clientId, () => this.api.post(reg(clientId, "/certificates"), { certificate }), "Certificate added.");
  }
}

/** When a credential was last used; for a replaced secret, whether anything still uses it. */
function usedLine(credential) {
  const when = usedAgo(credential.last_used_at);
  if (!credential.replaced_at) return when;
  const since = credential.last_used_at && credential.last_used_at > credential.replaced_at;
  return [when, h("span", { class: "tenant" }, since ? "still in use since it was replaced" : "unused since it was replaced")];
}

function splitCustomerScope(scope) {
  if (scope === "all") return ["all", ""];
  const [kind, ids] = scope.split(":");
  return [kind, ids.split(",").join(", ")];
}

function describeCustomers(scope) {
  const [kind, ids] = splitCustomerScope(scope);
  return kind === "all" ? "All customers" : `${kind === "groups" ? "Groups" : "Customers"}: ${ids}`;
}

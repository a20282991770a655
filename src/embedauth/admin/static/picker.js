// The permission picker: a combobox (WAI-ARIA 1.2) over the catalog that filters as one types,
// read permissions listed before write ones, the chosen ones as chips that can be removed.
import { $, debounce, fill, h } from "./dom.js";

export class ScopePicker {
  /** Over the combobox ``#{prefix}-search``, its listbox ``#{prefix}-options`` and chips ``#{prefix}-chips``. */
  constructor(api, prefix = "scope") {
    this.api = api;
    this.prefix = prefix;
    this.input = $(`#${prefix}-search`);
    this.list = $(`#${prefix}-options`);
    this.chips = $(`#${prefix}-chips`);
    this.chosen = [];
    this.options = [];
    this.active = -1;
    this.search = debounce(() => this.refresh(), 120);
    this.input.addEventListener("input", () => this.search());
    this.input.addEventListener("click", () => this.refresh()); // typing, a click or ArrowDown opens the list
    this.input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    this.input.addEventListener("keydown", (event) => this.key(event));
  }

  /** Start over with ``scopes`` chosen. */
  set(scopes) {
    this.chosen = [...scopes];
    this.input.value = "";
    this.close();
    this.drawChips();
  }

  get() {
    return [...this.chosen];
  }

  async refresh() {
    const typed = this.input.value.trim();
    let items = [];
    try {
      items = (await this.api.get("/permissions", { contains: typed })).items;
    } catch {
      items = [];
    }
    if (this.input.value.trim() !== typed) return; // a later keystroke has its own answer coming
    const rank = (p) => (p.access === "read" ? 0 : 1);
    this.options = items
      .filter((p) => !this.chosen.includes(p.name))
      .sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1));
    this.active = this.options.length ? 0 : -1;
    this.drawOptions();
  }

  drawOptions() {
    const options = this.options.map((p, i) =>
      h("li", {
        role: "option",
        id: `${this.prefix}-option-${i}`,
        "aria-selected": i === this.active ? "true" : "false",
        onmousedown: (event) => { event.preventDefault(); this.pick(i); },
      },
      h("span", { class: "option-name" }, p.name),
      h("span", { class: `access ${p.access}` }, p.access),
      p.description ? h("span", { class: "option-description" }, p.description) : null));
    if (!options.length) options.push(h("li", { class: "none", role: "option", "aria-disabled": "true" }, "No permission matches"));
    fill(this.list, options);
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    if (this.active >= 0) this.input.setAttribute("aria-activedescendant", `${this.prefix}-option-${this.active}`);
    else this.input.removeAttribute("aria-activedescendant");
  }

  close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  key(event) {
    const open = !this.list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open) return this.refresh();
      if (!this.options.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.options.length) % this.options.length;
      this.drawOptions();
      $(`#${this.prefix}-option-${this.active}`)?.scrollIntoView({ block: "nearest" });
    } else if (event.key === "Enter") {
      event.preventDefault(); // Enter here picks; it never submits the form
      if (open && this.active >= 0) this.pick(this.active);
      else if (this.input.value.trim()) this.refresh().then(() => this.pick(0));
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      event.stopPropagation(); // close the list, not the dialog
      this.close();
    }
  }

  pick(index) {
    const permission = this.options[index];
    if (!permission) return;
    this.chosen.push(permission.name);
    this.input.value = "";
    this.drawChips();
    this.close(); // typing again finds the next one; an open list would cover the form's buttons
    this.input.focus();
  }

  drawChips() {
    fill(this.chips, this.chosen.map((name) =>
      h("li", { class: "chip" }, name,
        h("button", {
          type: "button",
          "aria-label": `Remove ${name}`,
          onclick: () => {
            this.chosen = this.chosen.filter((n) => n !== name);
            this.drawChips();
            this.input.focus();
          },
        }, "×"))));
  }
}

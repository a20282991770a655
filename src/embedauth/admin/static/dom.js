// Building the page: every piece of text goes in as text (textContent), never as HTML, so a
// registration's name or a problem's detail cannot become markup, whatever it holds.

/** An element: h("button", {class: "primary", onclick: f}, "Save"). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace what ``element`` holds with ``children``. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Call ``f`` once ``ms`` have passed without another call. */
export function debounce(f, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => f(...args), ms);
  };
}

/** Put ``text`` on the clipboard; true when it got there. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

const DAY = 86400000;

/** "in 12 days", "today", "expired", "never". */
export function expiresIn(iso, now = Date.now()) {
  if (!iso) return "never";
  const left = Date.parse(iso) - now;
  if (left <= 0) return "expired";
  const days = Math.floor(left / DAY);
  if (days === 0) return "today";
  return days === 1 ? "in 1 day" : `in ${days} days`;
}

/** "never", "today", "yesterday", "5 days ago". */
export function usedAgo(iso, now = Date.now()) {
  if (!iso) return "never";
  const days = Math.floor((now - Date.parse(iso)) / DAY);
  if (days <= 0) return "today";
  return days === 1 ? "yesterday" : `${days} days ago`;
}

/** A date as the reader writes it (``2026-12-02``), the exact time in its title. */
export function dateCell(iso) {
  if (!iso) return h("span", {}, "—");
  return h("time", { datetime: iso, title: new Date(iso).toString() }, iso.slice(0, 10));
}

/** Days until ``iso`` (negative once past), for the expiry warnings. */
export function daysLeft(iso, now = Date.now()) {
  return iso ? (Date.parse(iso) - now) / DAY : Infinity;
}
